"""The business profile: facts and promises, the parsers of what customers write, masking."""
