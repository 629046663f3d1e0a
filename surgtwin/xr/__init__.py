"""surgtwin.xr layer (see docs/architecture.md)."""
