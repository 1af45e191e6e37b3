"""Stage: embed the corpus with the base encoder (Ray Data) and build its FAISS index.

Writes ``RUN/index/base/``. Skipped when an index for the same corpus, encoder weights and index
shape is already there, so a rerun pays for nothing twice.
"""

from __future__ import annotations

import tempfile
from typing import Any, Callable, Optional

import numpy as np

from components import console, encoders, storage
from components.config import Config, EncoderConfig
from components.corpus import Corpus
from components.embedding import embed_texts
from components.index import MANIFEST_FILE, FaissIndex, index_shape
from components.versions import versions
from components.run_layout import base_index_uri
from components.run import Run, init_ray, stage


def _up_to_date(uri: str, corpus_hash: str, encoder_fingerprint: str, cfg: Config, encoder: EncoderConfig) -> bool:
    manifest_uri = storage.join(uri, MANIFEST_FILE)
    if not storage.exists(manifest_uri):
        return False
    m = storage.read_json(manifest_uri)
    return (
        m.get("corpus_hash") == corpus_hash
        and m.get("encoder", {}).get("fingerprint") == encoder_fingerprint
        and m.get("encoder", {}).get("max_seq_length") == encoder.max_seq_length
        and m.get("encoder", {}).get("normalize") == encoder.normalize
        and m.get("index") == index_shape(cfg.index, m.get("num_docs", 0), m.get("dim", 0))
    )


def index_corpus(cfg: Config, corpus: Corpus, encoder: EncoderConfig, uri: str, name: str = "index",
                 frozen_base: Optional[FaissIndex] = None) -> str:
    """Embed ``corpus`` with ``encoder`` through the Ray Data path and save its FAISS index at
    ``uri``, unless an index of the same corpus, weights and shape is there; return ``uri``.
    The base index and Stage 2's refreshed ones (a trained passage encoder) are both made here.
    With ``frozen_base``, the base index of a hybrid student whose transformer Stage 2 left as it
    was (``passages: branch``), only the static half of each vector is pooled again (seconds, where
    the transformer over the corpus takes minutes on a CPU); the other half is the base index's.
    A hybrid whose branch reads ``passage_tokens`` of each passage (``encoder.branch_passage_tokens``)
    has its static half pooled again that way after the corpus pass too, so the base index and the
    untrained student's index in Stage 2 are one and the same."""
    from components.hybrid_student import branch_of

    with tempfile.TemporaryDirectory() as scratch:
        model = encoders.load_encoder(encoders.fetched(encoder, scratch))
    identity = encoders.identity(model, encoder)
    corpus_hash = corpus.content_hash()
    if _up_to_date(uri, corpus_hash, identity["fingerprint"], cfg, encoder):
        console.say(f"{name}: up to date at {uri}, skipping")
        return uri
    if frozen_base is not None:
        vectors = _pooled_again(model, encoder, corpus, lambda rows: frozen_base.vectors(corpus.ids[rows]))
    else:
        init_ray(cfg.ray)
        embedded = embed_texts(corpus.passages(), encoder, cfg.ray, identity["dim"])
        branch = branch_of(model)
        # encode cuts a hybrid's bag where the transformer cuts; its branch may pool more of each passage
        pooled_more = branch is not None and branch.passage_tokens is not None
        vectors = _pooled_again(model, encoder, corpus, lambda rows: embedded[rows]) if pooled_more else embedded
    index = FaissIndex.build(vectors, corpus.ids, cfg.index, identity, corpus_hash)
    index.manifest["versions"] = versions()
    index.save(uri)
    console.say(f"{name}: {len(corpus)} passages, dim {identity['dim']}, {index.manifest['index']['kind']} → {uri}")
    return uri


def _pooled_again(model: Any, encoder: EncoderConfig, corpus: Corpus, frozen: Callable[[slice], np.ndarray],
                  batch: int = 512) -> np.ndarray:
    """The corpus's vectors under ``model``: the transformer half of ``frozen`` (the vectors of a
    slice of the corpus's rows), the static half pooled with ``model``'s branch
    (``hybrid_student.BranchPassages``)."""
    import torch

    from components.hybrid_student import BranchPassages

    side, texts, out = BranchPassages(model, encoder.max_seq_length), corpus.passages(), []
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            rows = slice(start, start + batch)
            out.append(side.vectors(torch.as_tensor(frozen(rows)), *side.tokens(texts[rows], "cpu")).numpy())
    return np.concatenate(out)


@stage
def build_index(run: Run) -> str:
    """Embed the run's corpus with the base encoder and save its index; return the index URI."""
    return index_corpus(run.cfg, run.collection.corpus, run.cfg.encoder, base_index_uri(run.cfg))

