"""Rasa graph components named in config.yml (they run inside the Rasa process and import nothing of the gateway)."""
