"""Sinergi: the application shell — settings, the ASGI app factory, the CLI and demo data."""
