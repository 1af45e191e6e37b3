"""A fast student: a static-embedding retriever initialised from a transformer's token embeddings.

``StaticEmbedding`` (sentence-transformers) encodes a text as the mean of its tokens' vectors: no
attention, so a query is encoded in microseconds on a CPU. Initialised from the base model's own
input token embeddings, it starts as a weak bag-of-words retriever in the base's vocabulary, which
is exactly the student with headroom that distillation can move (``encoder.model: static:<base>``,
built and cached by ``components.students``).
"""

from __future__ import annotations

from typing import Any


def build(source: Any, out_dir: str) -> None:
    """Save to ``out_dir`` a sentence-transformers model of one ``StaticEmbedding`` module whose
    vocabulary and vectors are ``source``'s (the loaded base model's) input token embeddings."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import StaticEmbedding

    weights = source[0].auto_model.get_input_embeddings().weight.detach().clone()
    SentenceTransformer(modules=[StaticEmbedding(source.tokenizer, embedding_weights=weights)], device="cpu").save(out_dir)
