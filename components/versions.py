"""Versions of the packages that shape results, recorded in every manifest and report."""

from __future__ import annotations

import platform
from importlib import metadata

_PACKAGES = ("idistill", "ray", "torch", "transformers", "sentence-transformers", "faiss-cpu", "faiss-gpu-cu12", "bm25s", "ir-measures")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
