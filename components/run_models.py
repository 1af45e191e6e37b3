"""Loading a run's retrievers from its artifacts: the base dense retriever, the distilled query
encoder over the base index, and the Stage 1 ranker re-ranking the base top-n.

Shared by the evaluation and the Serve application, so both serve exactly what a run produced.
Models stored under ``s3://`` are copied to ``scratch`` (a local directory the caller owns).
"""

from __future__ import annotations

from typing import Callable

from components import encoders, storage, students
from components.config import Config
from components.corpus import Corpus
from components.index import FaissIndex
from components.ranker import RerankRetriever, load_ranker
from components.retrieval import DenseRetriever
from components.run_layout import base_index_uri, ranker_uri, retriever_uri, stage_model


def dense_name(model: str) -> str:
    """A retriever name that says what it is: ``base-minilm`` for the default encoder,
    ``base-static-minilm`` and ``base-hybrid-minilm`` for the students built from it."""
    prefix, base = students.split(model) or ("", model)
    short = base.rstrip("/").split("/")[-1].lower()
    kind = f"{prefix.rstrip(':')}-" if prefix else ""
    return f"base-{kind}{'minilm' if short.startswith('all-minilm') else short}"


def load_base(cfg: Config, corpus: Corpus) -> DenseRetriever:
    """The base encoder over the run's base index (refused if built from another corpus)."""
    index = FaissIndex.load(base_index_uri(cfg), corpus_hash=corpus.content_hash(), use_gpu=cfg.index.gpu)
    return DenseRetriever(dense_name(cfg.encoder.model), encoders.load_encoder(cfg.encoder), cfg.encoder, index)


def load_distilled(
    cfg: Config, base: DenseRetriever, scratch: str, name: str = "distilled", uri: str | None = None
) -> DenseRetriever:
    """The Stage 2 query encoder of ``cfg.run_dir`` (or the one trained at ``uri``) searching
    ``base``'s index, or the stage's own index when its passage side was trained (refused unless
    the passage vectors are the ones it was trained against)."""
    uri = uri or retriever_uri(cfg)
    manifest = storage.read_json(storage.join(uri, "manifest.json"))
    local = storage.local_dir(stage_model(uri, manifest), scratch)
    model = encoders.load_encoder(cfg.encoder.model_copy(update={"model": local}))
    return DenseRetriever(name, model, cfg.encoder, passage_index(cfg, base, manifest.get("index")),
                          manifest["document_encoder"]["fingerprint"])


def passage_index(cfg: Config, base: DenseRetriever, index_uri: str | None) -> FaissIndex:
    """The index a Stage 2 model searches: its own (``index_uri``, from its manifest) where its
    passage side was trained too, refused unless it holds the same corpus; else ``base``'s."""
    if not index_uri:
        return base.index
    return FaissIndex.load(index_uri, corpus_hash=base.index.manifest["corpus_hash"], use_gpu=cfg.index.gpu)


def load_rerank(cfg: Config, first: DenseRetriever, passage_of: Callable[[str], str], depth: int, scratch: str) -> RerankRetriever:
    """The Stage 1 ranker re-ordering ``first``'s top ``depth``, reading pairs at the length it
    was trained on and with the prior it was trained with (both recorded in its manifest),
    whatever the current config says."""
    manifest = storage.read_json(storage.join(ranker_uri(cfg), "manifest.json"))
    model, tokenizer = load_ranker(storage.local_dir(stage_model(ranker_uri(cfg), manifest), scratch))
    trained = manifest.get("inputs", {}).get("train", {})
    rc = cfg.train.ranker
    return RerankRetriever(
        f"ranker-rerank@{depth}", first, passage_of, model, tokenizer, depth,
        int(trained.get("max_seq_length", rc.max_seq_length)), rc.score_batch_size, trained.get("prior_temperature"),
        cfg.train.precision,
    )
