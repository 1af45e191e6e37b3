"""Stage: embed the corpus with the base encoder (Ray Data) and build its FAISS index.

Writes ``RUN/index/base/``. Skipped when an index for the same corpus, encoder weights and index
shape is already there, so a rerun pays for nothing twice.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from components import encoders, storage
from components.config import Config
from components.corpus import Corpus, load_corpus
from components.embedding import embed_texts
from components.index import MANIFEST_FILE, FaissIndex
from components.versions import versions
from components.run_layout import base_index_uri
from jobs.common import init_ray, job_main, stage


def _up_to_date(uri: str, corpus_hash: str, encoder_fingerprint: str, cfg: Config) -> bool:
    manifest_uri = storage.join(uri, MANIFEST_FILE)
    if not storage.exists(manifest_uri):
        return False
    m = storage.read_json(manifest_uri)
    return (
        m.get("corpus_hash") == corpus_hash
        and m.get("encoder", {}).get("fingerprint") == encoder_fingerprint
        and m.get("encoder", {}).get("max_seq_length") == cfg.encoder.max_seq_length
        and m.get("encoder", {}).get("normalize") == cfg.encoder.normalize
        and m.get("index", {}).get("kind") == cfg.index.kind
    )


@stage
def build_index(cfg: Config, corpus: Optional[Corpus] = None) -> str:
    """Embed ``corpus`` (default: the configured one) and save its index; return the index URI."""
    corpus = corpus if corpus is not None else load_corpus(cfg.data.path, cfg.data.on_invalid)
    uri = base_index_uri(cfg)
    model = encoders.load_encoder(cfg.encoder)
    identity = encoders.identity(model, cfg.encoder)
    corpus_hash = corpus.content_hash()
    if _up_to_date(uri, corpus_hash, identity["fingerprint"], cfg):
        print(f"index: up to date at {uri}, skipping")
        return uri
    del model  # the Ray Data actors load their own copies
    init_ray(cfg.ray)
    vectors = embed_texts(corpus.passages(), cfg.encoder, cfg.ray, identity["dim"])
    index = FaissIndex.build(vectors, corpus.ids, cfg.index, identity, corpus_hash)
    index.manifest["versions"] = versions()
    index.save(uri)
    print(f"index: {len(corpus)} passages, dim {identity['dim']}, {cfg.index.kind} → {uri}")
    return uri


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    return job_main(__doc__, build_index, argv, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
