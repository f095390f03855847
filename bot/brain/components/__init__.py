"""bot.brain.components."""
