"""Channel connectors: each turns its platform's messages into one internal message type."""
