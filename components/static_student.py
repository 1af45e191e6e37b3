"""A fast student: a static-embedding retriever initialised from a transformer's token embeddings.

``StaticEmbedding`` (sentence-transformers) encodes a text as the mean of its tokens' vectors: no
attention, so a query is encoded in microseconds on a CPU. Initialised from the base model's own
input token embeddings, it starts as a weak bag-of-words retriever in the base's vocabulary, which
is exactly the student with headroom that distillation can move (``encoder.model: static:<base>``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

PREFIX = "static:"


def cache_dir() -> Path:
    return Path(os.environ.get("IDISTILL_CACHE", Path(tempfile.gettempdir()) / "idistill-cache"))


def build_static(base: str, out_dir: str) -> str:
    """Save to ``out_dir`` a sentence-transformers model of one ``StaticEmbedding`` module whose
    vocabulary and vectors are ``base``'s input token embeddings; return ``out_dir``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import StaticEmbedding

    from components.encoders import resolve_model

    source = SentenceTransformer(resolve_model(base), device="cpu")
    weights = source[0].auto_model.get_input_embeddings().weight.detach().clone()
    model = SentenceTransformer(modules=[StaticEmbedding(source.tokenizer, embedding_weights=weights)], device="cpu")
    scratch = tempfile.mkdtemp(dir=Path(out_dir).parent)
    model.save(scratch)
    os.replace(scratch, out_dir)  # whole or not at all: a concurrent builder never sees half a model
    return out_dir


def resolve_static(spec: str) -> str:
    """The local directory of ``static:<base>``, built on first use and cached by ``base``."""
    base = spec[len(PREFIX):]
    out = cache_dir() / f"static-{hashlib.sha256(base.encode()).hexdigest()[:16]}"
    if not out.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        build_static(base, str(out))
    return str(out)
