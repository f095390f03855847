"""bot.training."""
