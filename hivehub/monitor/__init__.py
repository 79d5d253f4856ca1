"""Self-monitoring adapters: module health from real signals."""
