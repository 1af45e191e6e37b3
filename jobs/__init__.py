"""Thin entry points: each stage runs as ``python -m jobs.<stage> --config FILE`` (e.g. under
``ray job submit``) and through the ``idistill`` CLI, calling the same function."""
