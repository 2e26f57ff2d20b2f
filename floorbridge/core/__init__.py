"""Pure domain: no I/O, no platform imports."""
