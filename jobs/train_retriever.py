"""Stage 2: train the retriever to match the ranker's distribution (KL, Ray Train).

For every training question, the ranker scores the base retriever's candidates (a Ray Data actor
pool); the retriever then learns KL(softmax(ranker / tau_ranker) ‖ softmax(cos / tau_retriever)).
By default only the query encoder learns, against the frozen passage vectors of the base index, so
the index needs no rebuild: the distilled retriever is the new query encoder over
``RUN/index/base``. With ``train.retriever.passages: trained`` both sides learn, the corpus is
re-embedded and the candidates refreshed between rounds, and the result gets its own index
(``RUN/retriever/index``). Either way the kept model is the dev-chosen weight average with the
base encoder. Writes ``RUN/retriever/model`` (sentence-transformers format), ``losses.jsonl`` and
a manifest naming the passage encoder, the index and the dev choice.
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pyarrow as pa

from components import encoders, storage
from components.config import Config
from components.corpus import Collection, Corpus, load_collection
from components.errors import ConfigError, DataError
from components.index import FaissIndex
from components.metrics import rank_metrics
from components.retrieval import DenseRetriever, Hits, search_all
from components.weight_averaging import dev_split, interpolate, pick_alpha
from components.ranker import score_with_ray
from components.training import LOSSES_FILE, MODEL_DIR, retriever_loop, retriever_loop_config
from components.run_layout import base_index_uri, ranker_uri, retriever_uri
from jobs.candidates import build_candidates
from jobs.common import init_ray, job_main, stage
from jobs.generate_questions import generate_questions
from jobs.index import index_corpus
from jobs.label import label
from jobs.train_ranker import USABLE, NoUsableLabels, train_ranker, train_stage, use_gpu


def ranker_scores(
    cfg: Config, ranker_model: str, passages: dict[str, str], questions: list[str], candidates: list[list[str]],
    cache: Optional[str] = None,
) -> list[np.ndarray]:
    """Ranker scores of every candidate, cached in ``cache`` (default
    ``RUN/retriever/ranker_scores.parquet``) and reused while the inputs are the same."""
    cache = cache or storage.join(retriever_uri(cfg), "ranker_scores.parquet")
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


# Scores a new candidate list per question (the ranker can; a fixed LLM permutation cannot),
# caching them at the given URI: what lets Stage 2 refresh its candidates.
Rescore = Callable[[list[str], list[list[str]], Optional[str]], list[np.ndarray]]


@dataclass
class Lists:
    """What Stage 2 learns from: each question's candidates and the teacher's scores of them, plus
    the dev targets that choose the weight average."""

    question_ids: list[str]
    questions: list[str]
    candidates: list[list[str]]
    teacher: list[np.ndarray]
    teacher_inputs: Any  # identifies what produced the scores, for resuming
    dev_targets: dict[str, set[str]]
    dev_target: str  # what the targets are, for the manifest and report
    rescore: Optional[Rescore] = None

    def subset(self, keep: list[int]) -> tuple[list[str], list[list[str]], list[np.ndarray]]:
        return [self.questions[i] for i in keep], [self.candidates[i] for i in keep], [self.teacher[i] for i in keep]


def _padded(ids: list[str], scores: np.ndarray, width: int) -> dict[str, Any]:
    return {"ranker_scores": np.pad(scores, (0, width - len(ids))).astype(np.float32), "mask": np.arange(width) < len(ids)}


def frozen_rows(index: FaissIndex, questions: list[str], candidates: list[list[str]], teacher: list[np.ndarray]) -> list[dict[str, Any]]:
    """Stage 2 rows over the index's stored passage vectors (passage side frozen)."""
    width = max(len(c) for c in candidates)
    rows = []
    for question, ids, s in zip(questions, candidates, teacher):
        vecs = np.zeros((width, index.manifest["dim"]), np.float32)
        vecs[: len(ids)] = index.vectors(ids)
        rows.append({"question": question, "passage_emb": vecs, **_padded(ids, s, width)})
    return rows


def text_rows(passages: dict[str, str], questions: list[str], candidates: list[list[str]], teacher: list[np.ndarray]) -> list[dict[str, Any]]:
    """Stage 2 rows with the passages' text, encoded in the loop (passage side trained)."""
    width = max(len(c) for c in candidates)
    return [{"question": q, "passages": [passages[d] for d in ids] + [""] * (width - len(ids)), **_padded(ids, s, width)}
            for q, ids, s in zip(questions, candidates, teacher)]


def train_query_encoder(cfg: Config, collection: Collection, stage_name: str, lists: Lists) -> str:
    """Train the retriever on KL(softmax(teacher / tau_r) ‖ softmax(cos / tau_q)) over each
    question's candidates; writes ``RUN/<stage_name>``. With the passage side frozen (default) only
    the query encoder learns, against the base index's vectors, which then serve it unchanged;
    with it trained, see ``train_with_refresh``.

    A ``dev_fraction`` of the questions with a dev target is held out of training; the kept model
    is the weight average with the base encoder that retrieves those targets best.
    """
    base_index = FaissIndex.load(base_index_uri(cfg), corpus_hash=collection.corpus.content_hash())
    tc = cfg.train.retriever
    groups = document_groups(collection.corpus, lists.dev_targets)
    dev = dev_split([q for q in lists.question_ids if lists.dev_targets.get(q)], tc.dev_fraction, cfg.seed, groups)
    inputs = {"ranker": lists.teacher_inputs, "index": base_index.manifest["files"], "dev": storage.content_hash(sorted(dev)),
              "encoder": cfg.encoder.model, "train": tc.model_dump(), "workers": cfg.train.num_workers, "seed": cfg.seed}
    out = storage.join(cfg.run_dir, stage_name)
    if storage.stage_is_current(out, inputs):
        print(f"{stage_name}: up to date at {out}, skipping")
        return storage.join(out, MODEL_DIR)
    dev_ids = sorted(dev)
    text_of = dict(zip(lists.question_ids, lists.questions))
    chooser = functools.partial(
        choose_average, cfg, collection.corpus, stage_name, dev_ids, [text_of[q] for q in dev_ids],
        {q: lists.dev_targets[q] for q in dev_ids}, lists.dev_target, len({groups[q] for q in dev_ids}),
    )
    keep = [i for i, q in enumerate(lists.question_ids) if q not in dev]
    if tc.passages == "trained":
        return train_with_refresh(cfg, collection, stage_name, lists, keep, inputs, chooser)
    rows = frozen_rows(base_index, *lists.subset(keep))
    model = train_stage(
        cfg, stage_name, retriever_loop, rows, retriever_loop_config(cfg), inputs, finish=functools.partial(chooser, base_index),
        document_encoder=base_index.manifest["encoder"], questions=len(rows),
    )
    print(f"{stage_name}: query encoder trained on {len(rows)} questions → {model}")
    return model


def document_groups(corpus: Corpus, targets: dict[str, set[str]]) -> dict[str, str]:
    """Each question's group for the dev split: the title of its target document (the first in
    title order when it has several), or the document id where the corpus has no titles, so that
    dev questions are about documents the training questions are not, as test questions are."""
    title = {d: t or d for d, t in zip(corpus.ids, corpus.titles)}
    return {q: min(title.get(d, d) for d in docs) for q, docs in targets.items() if docs}


def train_with_refresh(
    cfg: Config, collection: Collection, stage_name: str, lists: Lists, keep: list[int], inputs: dict[str, Any],
    chooser: Callable[..., tuple[str, dict[str, Any]]],
) -> str:
    """Both encoders learn (one shared model), in rounds of ``refresh_every`` epochs. Before each
    round after the first, the corpus is re-embedded with the current model through the same Ray
    Data path as the base index, and, when the teacher can score new lists (the ranker), every
    question's candidates are retrieved again and rescored (Atlas-style refresh). Each finished
    round is kept under ``RUN/<stage>/rounds/<r>``, so a rerun resumes at the next one. The kept
    model gets its own index, ``RUN/<stage>/index``, which the evaluation and the endpoint use."""
    tc = cfg.train.retriever
    out = storage.join(cfg.run_dir, stage_name)
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    questions, candidates, teacher = lists.subset(keep)
    model_spec, done, r = cfg.encoder.model, 0, 0
    while done < tc.epochs:
        epochs = min(tc.refresh_every, tc.epochs - done)
        round_dir = storage.join(out, "rounds", str(r))
        if r > 0 and lists.rescore is not None:
            encoder = cfg.encoder.model_copy(update={"model": model_spec})
            index = FaissIndex.load(index_corpus(cfg, collection.corpus, encoder, storage.join(round_dir, "index"),
                                                 name=f"{stage_name}: round {r} index"))
            with tempfile.TemporaryDirectory() as scratch:
                current = DenseRetriever(f"{stage_name}-round{r}", encoders.load_encoder(encoders.fetched(encoder, scratch)), cfg.encoder, index)
                candidates = search_all(current, questions, cfg.labels.num_candidates, cfg.eval.batch_size).ids
            teacher = lists.rescore(questions, candidates, storage.join(round_dir, "ranker_scores.parquet"))
        round_inputs = {**inputs, "round": r, "epochs": epochs, "lists": storage.content_hash([candidates, [t.tolist() for t in teacher]])}
        if storage.stage_is_current(round_dir, round_inputs):
            print(f"{stage_name}: round {r} up to date at {round_dir}, skipping")
        else:
            rows = text_rows(passages, questions, candidates, teacher)
            train_stage(cfg, stage_name, retriever_loop, rows, retriever_loop_config(cfg, model=model_spec, epochs=epochs),
                        round_inputs, out_dir=round_dir, questions=len(rows))
        model_spec, done, r = storage.join(round_dir, MODEL_DIR), done + epochs, r + 1
    curve = [json.dumps({**json.loads(line), "round": i})
             for i in range(r) for line in storage.read_text(storage.join(out, "rounds", str(i), LOSSES_FILE)).splitlines()]
    storage.write_text(storage.join(out, LOSSES_FILE), "\n".join(curve) + "\n")
    with tempfile.TemporaryDirectory() as scratch:
        kept, details = chooser(None, storage.local_dir(model_spec, scratch), tempfile.mkdtemp(dir=scratch))
        storage.put_dir(kept, storage.join(out, MODEL_DIR))
    final = cfg.encoder.model_copy(update={"model": storage.join(out, MODEL_DIR)})
    index_uri = index_corpus(cfg, collection.corpus, final, storage.join(out, "index"), name=f"{stage_name}: index")
    storage.mark_stage_done(out, inputs, document_encoder=FaissIndex.load(index_uri).manifest["encoder"], index=index_uri,
                            questions=len(questions), rounds=r, **details)
    print(f"{stage_name}: both encoders trained on {len(questions)} questions in {r} round(s) → {storage.join(out, MODEL_DIR)}")
    return storage.join(out, MODEL_DIR)


def choose_average(
    cfg: Config, corpus: Corpus, stage_name: str, dev_ids: list[str], dev_questions: list[str],
    targets: dict[str, set[str]], target: str, documents: int, index: Optional[FaissIndex], trained_dir: str, scratch: str,
) -> tuple[str, dict[str, Any]]:
    """Score each weight average of the base and trained encoders on the dev questions (nDCG@10 of
    their targets over the whole corpus); save the best one to ``scratch``. ``index`` holds the
    frozen passage vectors; without one (passage side trained) each average re-embeds the corpus,
    under ``RUN/<stage>/dev/``. ``documents`` (how many documents the dev questions are about) goes to
    the manifest."""
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
        searched = index
        if searched is None:
            where = storage.join(cfg.run_dir, stage_name, "dev", f"alpha-{alpha:g}")
            model.save(f"{scratch}/alpha-{alpha:g}")
            storage.put_dir(f"{scratch}/alpha-{alpha:g}", storage.join(where, MODEL_DIR))
            encoder = cfg.encoder.model_copy(update={"model": storage.join(where, MODEL_DIR)})
            searched = FaissIndex.load(index_corpus(cfg, corpus, encoder, storage.join(where, "index"), name=f"{stage_name}: dev α={alpha:g} index"))
        ids, hit_scores = searched.search(encoders.encode(model, dev_questions, cfg.encoder), 10)
        scores.append(rank_metrics(Hits(ids, hit_scores), dev_ids, qrels, [10])["ndcg@10"])
    chosen = pick_alpha(alphas, scores)
    model.load_state_dict(interpolate(base, trained, chosen))
    model.save(f"{scratch}/chosen")
    curve = ", ".join(f"α={a:g}: {s:.4f}" for a, s in zip(alphas, scores))
    print(f"{stage_name}: dev nDCG@10 on {len(dev_ids)} held-out questions: {curve} → keeping α={chosen:g}")
    return f"{scratch}/chosen", {"dev": {"questions": len(dev_ids), "documents": documents, "target": target, "alphas": alphas,
                                         "ndcg@10": scores, "alpha": chosen}}


@stage
def train_retriever(cfg: Config, collection: Optional[Collection] = None) -> str:
    """Train the ranker if needed, then the retriever; return the URI of the saved model."""
    collection = collection if collection is not None else load_collection(cfg.data.path, cfg.data.on_invalid)
    ranker_model = train_ranker(cfg, collection)
    cands = storage.read_parquet(build_candidates(cfg, collection)).to_pydict()
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    rescore: Rescore = functools.partial(ranker_scores, cfg, ranker_model, passages)
    scores = rescore(cands["question"], cands["candidate_ids"], None)
    return train_query_encoder(cfg, collection, "retriever", Lists(
        cands["question_id"], cands["question"], cands["candidate_ids"], scores,
        storage.content_hash([s.tolist() for s in scores]), teacher_top(cfg, collection), TEACHER_TOP, rescore,
    ))


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
    return train_query_encoder(cfg, collection, f"retriever-{ablation}", Lists(
        question_ids, questions, candidates, teacher,
        storage.content_hash([ablation, candidates, [t.tolist() for t in teacher]]), dev_targets, dev_target,
    ))


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
