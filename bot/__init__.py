"""kefu gateway and shared service code (ticket store, profile, privacy)."""
