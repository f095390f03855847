"""bot.brain."""
