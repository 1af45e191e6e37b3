"""Stage 2: train the retriever's query encoder to match the ranker's distribution (KL, Ray Train).

For every training question, the ranker scores the base retriever's candidates (a Ray Data actor
pool); the query encoder then learns KL(softmax(ranker / tau_ranker) ‖ softmax(cos / tau_retriever))
against the frozen passage vectors of the base index, so the index needs no rebuild: the distilled
retriever is the new query encoder over ``RUN/index/base``. Writes ``RUN/retriever/model``
(sentence-transformers format), ``losses.jsonl`` and a manifest naming the passage encoder.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Optional, Sequence

import numpy as np
import pyarrow as pa

from components import encoders, storage
from components.config import Config
from components.corpus import Collection, load_collection
from components.errors import ConfigError, DataError
from components.index import FaissIndex
from components.metrics import rank_metrics
from components.retrieval import Hits
from components.weight_averaging import dev_split, interpolate, pick_alpha
from components.ranker import score_with_ray
from components.training import MODEL_DIR, retriever_loop
from components.run_layout import base_index_uri, ranker_uri, retriever_uri
from jobs.candidates import build_candidates
from jobs.common import init_ray, job_main, stage
from jobs.generate_questions import generate_questions
from jobs.label import label
from jobs.train_ranker import USABLE, NoUsableLabels, train_ranker, train_stage, use_gpu


def ranker_scores(cfg: Config, ranker_model: str, questions: list[str], candidates: list[list[str]], passages: dict[str, str]) -> list[np.ndarray]:
    """Ranker scores of every candidate, cached in ``RUN/retriever/ranker_scores.parquet``."""
    cache = storage.join(retriever_uri(cfg), "ranker_scores.parquet")
    ranker_manifest = storage.read_json(storage.join(ranker_uri(cfg), "manifest.json"))
    inputs = storage.content_hash([ranker_manifest["inputs"], questions, candidates])
    if storage.exists(cache):
        table = storage.read_parquet(cache)
        if table.schema.metadata and table.schema.metadata.get(b"inputs") == inputs.encode():
            return [np.asarray(s, dtype=np.float32) for s in table.column("scores").to_pylist()]
    init_ray(cfg.ray)
    rc = cfg.train.ranker
    flat = score_with_ray(
        [q for q, c in zip(questions, candidates) for _ in c], [passages[d] for c in candidates for d in c],
        ranker_model, rc.max_seq_length, rc.score_batch_size, cfg.ray.embed_actors, use_gpu(cfg),
    )
    out, at = [], 0
    for c in candidates:
        out.append(flat[at : at + len(c)])
        at += len(c)
    table = pa.table({"scores": [s.tolist() for s in out]}).replace_schema_metadata({"inputs": inputs})
    storage.write_parquet(cache, table)
    return out


def train_query_encoder(
    cfg: Config, collection: Collection, stage_name: str, question_ids: list[str], questions: list[str],
    candidates: list[list[str]], teacher: list[np.ndarray], teacher_inputs: Any,
    dev_targets: dict[str, set[str]], dev_target: str,
) -> str:
    """Train the query encoder on KL(softmax(teacher / tau_r) ‖ softmax(cos / tau_q)) over each
    question's candidates, against the base index's frozen passage vectors; writes ``RUN/<stage_name>``.

    A ``dev_fraction`` of the questions with a ``dev_targets`` entry is held out of training; the
    kept model is the weight average with the base encoder that retrieves those targets (described
    by ``dev_target``) best.
    """
    index = FaissIndex.load(base_index_uri(cfg), corpus_hash=collection.corpus.content_hash())
    tc = cfg.train.retriever
    dev = dev_split([q for q in question_ids if dev_targets.get(q)], tc.dev_fraction, cfg.seed)
    inputs = {"ranker": teacher_inputs, "index": index.manifest["files"], "dev": storage.content_hash(sorted(dev)),
              "encoder": cfg.encoder.model, "train": tc.model_dump(), "workers": cfg.train.num_workers, "seed": cfg.seed}
    out = storage.join(cfg.run_dir, stage_name)
    if storage.stage_is_current(out, inputs):
        print(f"{stage_name}: up to date at {out}, skipping")
        return storage.join(out, MODEL_DIR)
    width = max(len(c) for c in candidates)
    rows: list[dict[str, Any]] = []
    for qid, question, ids, s in zip(question_ids, questions, candidates, teacher):
        if qid in dev:
            continue
        vecs = np.zeros((width, index.manifest["dim"]), np.float32)
        vecs[: len(ids)] = index.vectors(ids)
        rows.append({
            "question": question,
            "passage_emb": vecs,
            "ranker_scores": np.pad(s, (0, width - len(ids))).astype(np.float32),
            "mask": np.arange(width) < len(ids),
        })
    dev_ids = sorted(dev)
    text_of = dict(zip(question_ids, questions))
    finish = functools.partial(
        choose_average, cfg, index, stage_name, dev_ids, [text_of[q] for q in dev_ids],
        {q: dev_targets[q] for q in dev_ids}, dev_target,
    )
    model = train_stage(
        cfg, stage_name, retriever_loop, rows, {**tc.model_dump(), "model": cfg.encoder.model}, inputs, finish=finish,
        document_encoder=index.manifest["encoder"], questions=len(rows),
    )
    print(f"{stage_name}: query encoder trained on {len(rows)} questions → {model}")
    return model


def choose_average(
    cfg: Config, index: FaissIndex, stage_name: str, dev_ids: list[str], dev_questions: list[str],
    targets: dict[str, set[str]], target: str, trained_dir: str, scratch: str,
) -> tuple[str, dict[str, Any]]:
    """Score each weight average of the base and trained query encoders on the dev questions
    (nDCG@10 of their teacher targets over the whole index); save the best one to ``scratch``."""
    alphas = sorted(set(cfg.train.retriever.interpolation))
    if not dev_ids:
        print(f"{stage_name}: no dev questions, keeping the trained model as it is")
        return trained_dir, {"dev": None}
    base = encoders.load_encoder(cfg.encoder).state_dict()
    model = encoders.load_encoder(cfg.encoder.model_copy(update={"model": trained_dir}))
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    qrels = {q: {d: 1 for d in targets[q]} for q in dev_ids}
    scores = []
    for alpha in alphas:
        model.load_state_dict(interpolate(base, trained, alpha))
        ids, hit_scores = index.search(encoders.encode(model, dev_questions, cfg.encoder), 10)
        scores.append(rank_metrics(Hits(ids, hit_scores), dev_ids, qrels, [10])["ndcg@10"])
    chosen = pick_alpha(alphas, scores)
    model.load_state_dict(interpolate(base, trained, chosen))
    model.save(scratch)
    curve = ", ".join(f"α={a:g}: {s:.4f}" for a, s in zip(alphas, scores))
    print(f"{stage_name}: dev nDCG@10 on {len(dev_ids)} held-out questions: {curve} → keeping α={chosen:g}")
    return scratch, {"dev": {"questions": len(dev_ids), "target": target, "alphas": alphas,
                             "ndcg@10": scores, "alpha": chosen}}


@stage
def train_retriever(cfg: Config, collection: Optional[Collection] = None) -> str:
    """Train the ranker if needed, then the query encoder; return the URI of the saved model."""
    collection = collection if collection is not None else load_collection(cfg.data.path, cfg.data.on_invalid)
    ranker_model = train_ranker(cfg, collection)
    cands = storage.read_parquet(build_candidates(cfg, collection)).to_pydict()
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    scores = ranker_scores(cfg, ranker_model, cands["question"], cands["candidate_ids"], passages)
    return train_query_encoder(
        cfg, collection, "retriever", cands["question_id"], cands["question"], cands["candidate_ids"], scores,
        storage.content_hash([s.tolist() for s in scores]), teacher_top(cfg, collection), TEACHER_TOP,
    )


TEACHER_TOP = "the teacher LLM's first passage"


def teacher_top(cfg: Config, collection: Collection) -> dict[str, set[str]]:
    """The teacher LLM's first passage of each usable label: the dev target available without
    gold judgements."""
    labels = storage.read_parquet(label(cfg, collection)).to_pylist()
    return {r["question_id"]: {r["ranked_ids"][0]} for r in labels if r["status"] in USABLE and len(r["ranked_ids"])}


# Hard targets: every positive equally likely, negatives at (numerically) zero, whatever tau_r.
_NEGATIVE = -1e4


@stage
def train_ablation(cfg: Config, ablation: str, collection: Optional[Collection] = None) -> str:
    """A query encoder trained without the ranker, to show what the ranker buys:

    * ``direct``: the teacher LLM's permutation itself is the target (score ``-position``), on the
      questions with a usable label.
    * ``supervised``: gold relevance is the target: the judged-relevant candidates (the source
      passage for generated questions) against the other candidates as hard negatives, on the
      questions with at least one positive among their candidates.
    """
    collection = collection if collection is not None else load_collection(cfg.data.path, cfg.data.on_invalid)
    cands = storage.read_parquet(build_candidates(cfg, collection)).to_pydict()
    if ablation == "direct":
        labels = storage.read_parquet(label(cfg, collection)).to_pylist()
        usable = [r for r in labels if r["status"] in USABLE]
        if not usable:
            raise NoUsableLabels("no usable teacher labels: the direct ablation has nothing to learn from")
        question_ids = [r["question_id"] for r in usable]
        questions = [r["question"] for r in usable]
        candidates = [list(r["ranked_ids"]) for r in usable]
        teacher = [-np.arange(len(c), dtype=np.float32) for c in candidates]
        dev_targets, dev_target = teacher_top(cfg, collection), TEACHER_TOP
    elif ablation == "supervised":
        positives = gold_positives(cfg, collection)
        keep = [i for i, (qid, ids) in enumerate(zip(cands["question_id"], cands["candidate_ids"]))
                if positives.get(qid, set()) & set(ids)]
        if not keep:
            raise DataError("no training question has a judged-relevant passage among its candidates")
        question_ids = [cands["question_id"][i] for i in keep]
        questions = [cands["question"][i] for i in keep]
        candidates = [list(cands["candidate_ids"][i]) for i in keep]
        teacher = [np.array([0.0 if d in positives[cands["question_id"][i]] else _NEGATIVE for d in candidates[j]], np.float32)
                   for j, i in enumerate(keep)]
        dev_targets, dev_target = positives, "the judged-relevant passages"
    else:
        raise ConfigError(f"unknown ablation {ablation!r}; choose direct or supervised")
    return train_query_encoder(
        cfg, collection, f"retriever-{ablation}", question_ids, questions, candidates, teacher,
        storage.content_hash([ablation, candidates, [t.tolist() for t in teacher]]), dev_targets, dev_target,
    )


def gold_positives(cfg: Config, collection: Collection) -> dict[str, set[str]]:
    """Relevant passages per training question: the train qrels, or each generated question's source."""
    if cfg.data.questions == "generated":
        table = storage.read_parquet(generate_questions(cfg, collection)).to_pydict()
        return {q: {s} for q, s in zip(table["question_id"], table["source_id"])}
    qrels = collection.split(cfg.data.train_split, cfg.data.on_invalid).qrels
    return {q: {d for d, r in docs.items() if r > 0} for q, docs in qrels.items()}


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    return job_main(__doc__, train_retriever, argv, llm_options=True, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
