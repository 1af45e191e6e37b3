"""The pipeline's stages, one module each: each takes a ``Run``, calls the stages it needs, skips
itself when its outputs are current, and returns its output's URI. ``jobs/`` wraps each in a
command-line entry point."""
