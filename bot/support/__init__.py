"""Customer-service behaviour above the store and below any web framework: handoff lifecycle, SLA watcher, event names. Runs in the gateway."""
