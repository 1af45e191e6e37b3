"""Stage: embed the corpus with the base encoder (Ray Data) and build its FAISS index.

Writes ``RUN/index/base/``. Skipped when an index for the same corpus, encoder weights and index
shape is already there, so a rerun pays for nothing twice.
"""

from __future__ import annotations

import tempfile

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


def index_corpus(cfg: Config, corpus: Corpus, encoder: EncoderConfig, uri: str, name: str = "index") -> str:
    """Embed ``corpus`` with ``encoder`` through the Ray Data path and save its FAISS index at
    ``uri``, unless an index of the same corpus, weights and shape is there; return ``uri``.
    The base index and Stage 2's refreshed ones (a trained passage encoder) are both made here."""
    with tempfile.TemporaryDirectory() as scratch:
        identity = encoders.identity(encoders.load_encoder(encoders.fetched(encoder, scratch)), encoder)
    corpus_hash = corpus.content_hash()
    if _up_to_date(uri, corpus_hash, identity["fingerprint"], cfg, encoder):
        console.say(f"{name}: up to date at {uri}, skipping")
        return uri
    init_ray(cfg.ray)
    vectors = embed_texts(corpus.passages(), encoder, cfg.ray, identity["dim"])
    index = FaissIndex.build(vectors, corpus.ids, cfg.index, identity, corpus_hash)
    index.manifest["versions"] = versions()
    index.save(uri)
    console.say(f"{name}: {len(corpus)} passages, dim {identity['dim']}, {index.manifest['index']['kind']} → {uri}")
    return uri


@stage
def build_index(run: Run) -> str:
    """Embed the run's corpus with the base encoder and save its index; return the index URI."""
    return index_corpus(run.cfg, run.collection.corpus, run.cfg.encoder, base_index_uri(run.cfg))

