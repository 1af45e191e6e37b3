"""Stage 2 training: the retriever learns the teacher's scores over each question's candidates.

With the passage side frozen (default) only the query encoder learns, against the base index's
vectors, which then serve it unchanged. With it trained both sides learn, in rounds between which
the corpus is re-embedded and the candidates re-mined and rescored (Atlas-style refresh). With
``branch`` (a hybrid student) the static branch learns on both sides within one round, and the
kept model gets its own index. Either
way the kept model is the dev-chosen weight average with the base encoder.
"""

from __future__ import annotations

import functools
import json
import tempfile
from typing import Any, Callable

from components import console, encoders, storage
from components.config import Config
from components.corpus import Collection
from components.errors import ConfigError
from components.hybrid_student import is_hybrid
from components.distill.candidates import mine_candidates, negative_bank
from components.distill.dev import HeldOut, average_index, choose_average, rerank_on_dev
from components.distill.lists import GOLD, Lists, frozen_rows, text_rows
from components.distill.pooled_judge import judge_pools
from components.index import FaissIndex
from components.losses import RETRIEVER_LOSSES
from components.report import interval
from components.retrieval import DenseRetriever
from components.run_layout import base_index_uri, put_model, stage_model, switch_model
from components.stages.index import index_corpus
from components.training import LOSSES_FILE, RetrieverStage, train_stage


def train_query_encoder(cfg: Config, collection: Collection, stage_name: str, lists: Lists, held_out: HeldOut) -> str:
    """Train the retriever on KL(softmax(teacher / tau_r) ‖ softmax(cos / tau_q)) over each
    question's candidates (``kl_negatives``: with a bank of corpus passages in the student's
    softmax); writes ``RUN/<stage_name>``. With the passage side frozen (default) only
    the query encoder learns, against the base index's vectors, which then serve it unchanged;
    with it trained, see ``train_with_refresh``.

    ``held_out`` questions (and others about their documents) stay out of training; the kept
    model is the weight average with the base encoder that retrieves the held-out questions' dev
    targets best.
    """
    base_index = FaissIndex.load(base_index_uri(cfg), corpus_hash=collection.corpus.content_hash())
    tc = cfg.train.retriever
    dev = {q for q in lists.question_ids if q in held_out.questions and lists.dev_targets.get(q)}  # the scored ones
    inputs = {"ranker": lists.teacher_inputs, "index": base_index.manifest["files"], "dev": storage.content_hash(sorted(held_out.questions)),
              "encoder": cfg.encoder.model, "train": tc.inputs(ranker=lists.rescore is not None), "workers": cfg.train.num_workers, "seed": cfg.seed}
    out = storage.join(cfg.run_dir, stage_name)
    if storage.stage_is_current(out, inputs):
        console.say(f"{stage_name}: up to date at {out}, skipping")
        return stage_model(out)
    dev_ids = sorted(dev)
    text_of = dict(zip(lists.question_ids, lists.questions))
    judge = (functools.partial(judge_pools, cfg, collection.corpus, store_uri=storage.join(out, "dev", "judge"))
             if tc.dev_target == "pooled" and lists.dev_target != GOLD else None)
    chooser = functools.partial(
        choose_average, cfg, collection.corpus, stage_name, dev_ids, [text_of[q] for q in dev_ids],
        {q: lists.dev_targets[q] for q in dev_ids}, lists.dev_target, len({held_out.groups.get(q, q) for q in dev}), judge,
    )
    keep = [i for i, q in enumerate(lists.question_ids) if not held_out.excludes(q)]
    on_dev = rerank_on_dev(lists, dev) if lists.rescore is not None else None  # lists the ranker scored
    if on_dev:
        on_dev["signal"] = f"the ranker + {tc.first_stage_weight:g} × the first stage" if tc.first_stage_weight else "the ranker"
        console.say(f"{stage_name}: on {on_dev['questions']} dev questions, nDCG@10 of {lists.dev_target} in the candidate lists: "
                    f"first stage {on_dev['first_stage']:.4f}, {on_dev['signal']} {on_dev['teacher']:.4f} (paired difference "
                    f"{interval(on_dev['difference'])})")
    if tc.passages == "trained":  # the config refuses a loss that needs frozen negatives here
        return train_with_refresh(cfg, collection, stage_name, lists, keep, inputs, chooser)
    branch = tc.passages == "branch"
    if branch and not is_hybrid(encoders.resolve_model(cfg.encoder.model)):
        raise ConfigError(f"train.retriever.passages: branch needs a hybrid student (encoder.model: hybrid:<base>), "
                          f"not {cfg.encoder.model!r}")
    texts = dict(zip(collection.corpus.ids, collection.corpus.passages())) if branch else None
    stage = RetrieverStage.from_config(cfg)
    bank = negative_bank(collection.corpus.ids, tc.negatives, cfg.seed) if RETRIEVER_LOSSES[tc.loss].uses_negatives else None
    if bank is not None:
        stage.negatives = base_index.vectors(bank)
        stage.negative_texts = [texts[d] for d in bank] if texts else None
    rows = frozen_rows(base_index, *lists.subset(keep), bank=bank, texts=texts)
    finish = (functools.partial(_with_own_index, cfg, collection, stage_name, chooser, base_index) if branch
              else functools.partial(chooser, base_index))
    model = train_stage(
        cfg, stage_name, stage, rows, inputs, finish=finish,
        document_encoder=base_index.manifest["encoder"], questions=len(rows),
        llm_labelled=sum(1 for i in keep if lists.dev_targets.get(lists.question_ids[i])), teacher_on_dev=on_dev,
    )
    console.say(f"{stage_name}: {'query encoder and static passage side' if branch else 'query encoder'} trained on "
                f"{len(rows)} questions → {model}")
    return model


def _with_own_index(cfg: Config, collection: Collection, stage_name: str, chooser: Callable[..., tuple[str, dict[str, Any]]],
                    base_index: FaissIndex, trained_dir: str, scratch: str) -> tuple[str, dict[str, Any]]:
    """``passages: branch``: choose the weight average with each one's own index (the passage
    side moved; only its static half is pooled again, the transformer's is ``base_index``'s), and
    give the kept model the index of its α, which the evaluation and the endpoint then use."""
    kept, details = chooser(None, trained_dir, scratch, frozen_base=base_index)
    alpha = (details.get("dev") or {}).get("alpha", 1.0)
    index_uri = average_index(cfg, collection.corpus, stage_name, alpha, kept, base_index)  # the chooser's, reused
    return kept, {**details, "index": index_uri, "document_encoder": FaissIndex.load(index_uri).manifest["encoder"]}


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
                mined = mine_candidates(cfg, current, questions)
            candidates = mined.ids
            teacher = lists.rescore(questions, candidates, mined.scores, storage.join(round_dir, "ranker_scores.parquet"))
        round_inputs = {**inputs, "round": r, "epochs": epochs, "lists": storage.content_hash([candidates, [t.tolist() for t in teacher]])}
        if storage.stage_is_current(round_dir, round_inputs):
            console.say(f"{stage_name}: round {r} up to date at {round_dir}, skipping")
        else:
            rows = text_rows(passages, questions, candidates, teacher)
            stage = RetrieverStage.from_config(cfg.model_copy(update={"train": cfg.train.model_copy(
                update={"retriever": tc.model_copy(update={"epochs": epochs})})}), model_spec)
            train_stage(cfg, stage_name, stage, rows, round_inputs, out_dir=round_dir, questions=len(rows))
        model_spec, done, r = stage_model(round_dir), done + epochs, r + 1
    curve = [json.dumps({**json.loads(line), "round": i})
             for i in range(r) for line in storage.read_text(storage.join(out, "rounds", str(i), LOSSES_FILE)).splitlines()]
    with tempfile.TemporaryDirectory() as scratch:
        kept, details = chooser(None, storage.local_dir(model_spec, scratch), tempfile.mkdtemp(dir=scratch))
        placed = put_model(kept, out, inputs)
    final = cfg.encoder.model_copy(update={"model": placed})
    index_uri = index_corpus(cfg, collection.corpus, final, storage.join(out, "index"), name=f"{stage_name}: index")
    model = switch_model(out, inputs, placed, {LOSSES_FILE: "\n".join(curve).encode() + b"\n"},
                         document_encoder=FaissIndex.load(index_uri).manifest["encoder"], index=index_uri,
                         questions=len(questions), rounds=r, trained_uri=model_spec, **details)
    console.say(f"{stage_name}: both encoders trained on {len(questions)} questions in {r} round(s) → {model}")
    return model
