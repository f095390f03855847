"""Customer-service behaviour above the store and below any web framework: handoff lifecycle, SLA clocks, event names. Runs in the gateway."""
