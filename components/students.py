"""Students built from a base model on first use: ``static:<base>`` (``components.static_student``)
and ``hybrid:<base>`` (``components.hybrid_student``).

Each is written once per base into a cache folder (``IDISTILL_CACHE``, default the temp folder),
whole or not at all, so a model setting can name it anywhere a hub id or directory goes.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from pathlib import Path

# prefix → (cache name, module whose ``build(source, out_dir)`` writes the student from the loaded base)
KINDS = {"static:": ("static", "components.static_student"), "hybrid:": ("hybrid", "components.hybrid_student")}


def cache_dir() -> Path:
    return Path(os.environ.get("IDISTILL_CACHE", Path(tempfile.gettempdir()) / "idistill-cache"))


def split(spec: str) -> tuple[str, str] | None:
    """``(prefix, base)`` of a built student's spec, or None for any other model setting."""
    for prefix in KINDS:
        if spec.startswith(prefix):
            return prefix, spec[len(prefix):]
    return None


def resolve(spec: str) -> str | None:
    """The local directory of a built student (built now if it is not cached), or None when
    ``spec`` names no built student."""
    parts = split(spec)
    if parts is None:
        return None
    prefix, base = parts
    name, module = KINDS[prefix]
    out = cache_dir() / f"{name}-{hashlib.sha256(base.encode()).hexdigest()[:16]}"
    if not out.is_dir():
        from sentence_transformers import SentenceTransformer

        from components.encoders import resolve_model

        source = SentenceTransformer(resolve_model(base), device="cpu")
        out.parent.mkdir(parents=True, exist_ok=True)
        scratch = tempfile.mkdtemp(dir=out.parent)
        importlib.import_module(module).build(source, scratch)
        os.replace(scratch, out)  # whole or not at all: a concurrent builder never sees half a model
    return str(out)
