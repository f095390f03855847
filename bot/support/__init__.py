"""bot.support."""
