"""The gateway process: the composition root that faces customers (app, router, scale-out, launcher)."""
