"""surgtwin.collab layer (see docs/architecture.md)."""
