"""Probe for the hybrid student (``components.hybrid_student``): Stage 2's own loss and model,
a perfect teacher, minutes on a CPU. A probe, not the product: the pipeline's figures come from
``benchmarks/distill_quality.py``.

The teacher is the graded simulator's order of the base top-n (judgement grade, then its lexical
score), given as a permutation (score = −position; ``--spread`` scales it as the pipeline scales a teacher), as a perfect
listwise LLM would rank; every
list is kept, as the pipeline keeps them. The student is ``hybrid:<base>`` over its own frozen
passage vectors (``--passages branch``: their static part pooled again, as in the pipeline), trained by ``RetrieverStage.loss`` (so ``--loss`` and ``--tau-retriever`` mean
what they mean in ``train.retriever``) with AdamW and a linear warm-up and decay. Prints the
base's nDCG@10, the hybrid before and after training at each branch weight ``w`` (the branch's
vectors scaled by √w: score = cos_base + w·cos_static), each as a paired bootstrap 95% CI against
the base encoder alone. ``--dev F`` scores F of the train questions held out (seeded), to choose;
without it the test split (a diagnostic). ``--branch-passage-tokens N`` lets the trained
branch pool N tokens of each passage (the untrained rows keep the transformer's cut). ``--save F``
and ``--against F`` pair two runs' trained hybrids question by question.

    python scripts/hybrid_probe.py ../shared/datasets/nfcorpus --dev 0.2 --lr 1e-2 --loss kl_negatives
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import random

import numpy as np
import torch

from components import encoders
from components.config import EncoderConfig, load_config
from components.distill.spread import to_spread
from components.corpus import load_collection
from components.hybrid_student import StaticBranch
from components.llm.teacher_sim import Oracle
from components.metrics import paired_bootstrap, per_question_ndcg
from components.report import interval
from components.retrieval import Hits
from components.training import RetrieverStage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--base", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--dev", type=float, default=0.0, help="fraction of train questions held out and scored (else test)")
    ap.add_argument("--max-train", type=int, default=None, help="training questions (default: all not held out)")
    ap.add_argument("--n", type=int, default=20, help="candidates per list (the base's top n)")
    ap.add_argument("--loss", default="kl_negatives", choices=["kl", "kl_negatives"])
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--tau-retriever", type=float, default=0.025)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--noise", type=float, default=0.0, help="the simulator's Gaussian noise on relevance before ranking")
    ap.add_argument("--spread", type=float, default=None,
                    help="scale the teacher's scores to this mean within-list spread, as train.retriever.ranker_spread does")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="branch weights w to score")
    ap.add_argument("--passages", default="frozen", choices=["frozen", "branch"],
                    help="branch: the static branch learns on both sides, as train.retriever.passages does")
    ap.add_argument("--branch-passage-tokens", type=int, default=None,
                    help="with --passages branch: tokens of a passage the static bag pools in training, as encoder.branch_passage_tokens")
    ap.add_argument("--against", help="a JSON file of per-question nDCG@10 (another run's --save): also print this "
                    "run's trained hybrid minus it, paired per question")
    ap.add_argument("--save", help="write the trained hybrid's per-question nDCG@10 at the first weight here (JSON)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)

    collection = load_collection(a.data)
    texts, ids = collection.corpus.passages(), collection.corpus.ids
    train = collection.split("train")
    pool = sorted(train.questions.ids)
    random.Random(a.seed).shuffle(pool)
    if a.dev:
        held = pool[: int(len(pool) * a.dev)]
        pool, evaluated, gold = pool[len(held):], held, {q: train.qrels[q] for q in held}
    else:
        test = collection.split("test")
        evaluated, gold = test.questions.ids, test.qrels
    pool = pool[: a.max_train]
    question = dict(zip(collection.questions.ids, collection.questions.texts))

    cfg = EncoderConfig(model=f"hybrid:{a.base}", max_seq_length=a.max_seq_length)
    base_cfg = cfg.model_copy(update={"model": a.base})
    hybrid, base = encoders.load_encoder(cfg), encoders.load_encoder(base_cfg)
    passages_h = encoders.encode_corpus(hybrid, texts, cfg)
    passages_b = passages_h[:, : base.get_embedding_dimension()] * math.sqrt(2.0)  # the base part, unit again

    def ndcg(scores: np.ndarray) -> dict[str, float]:
        top = np.argsort(-scores, axis=1)[:, :100]
        return per_question_ndcg(Hits([[ids[j] for j in row] for row in top], [list(s[row]) for s, row in zip(scores, top)]),
                                 evaluated, gold)

    def versus(got: dict[str, float], reference: dict[str, float]) -> str:
        return f"{np.mean(list(got.values())):.4f}, Δ {interval(paired_bootstrap([got[q] - reference[q] for q in reference]))}"

    def branch_scores(model: torch.nn.Module, w: float, passages: np.ndarray = passages_h) -> np.ndarray:
        """cos_base + w·cos_static over the corpus for the evaluated questions."""
        q = encoders.encode(model, [question[x] for x in evaluated], cfg) * math.sqrt(2.0)
        d = base.get_embedding_dimension()
        return q[:, :d] @ passages_b.T + w * (q[:, d:] @ (passages[:, d:] * math.sqrt(2.0)).T)

    q_base = encoders.encode(base, [question[x] for x in evaluated], base_cfg)
    reference = ndcg(q_base @ passages_b.T)
    print(f"{'dev' if a.dev else 'test'}: {len(reference)} questions; base {a.base}: nDCG@10 {np.mean(list(reference.values())):.4f}")
    before = {w: branch_scores(hybrid, w) for w in a.weights}

    # the perfect teacher's permutation of the hybrid's own top n, as the pipeline's lists are mined
    q_train = encoders.encode(hybrid, [question[x] for x in pool], cfg)
    candidates = np.argsort(-(q_train @ passages_h.T), axis=1)[:, : a.n]
    noise = np.random.default_rng(a.seed)
    oracle = Oracle(collection, train.qrels)  # the graded simulator's own relevance (grade + lexical score)
    rows = []
    for x, cand in zip(pool, candidates):
        relevance = np.array(oracle.graded_relevance(question[x], [texts[j] for j in cand]))
        relevance = relevance + a.noise * noise.standard_normal(len(cand))
        position = np.argsort(np.argsort(-relevance, kind="stable"), kind="stable")
        rows.append({"question": question[x], "passage_emb": passages_h[cand], "ranker_scores": -position.astype(np.float32),
                     "mask": np.ones(len(cand), bool), "negative_index": cand.astype(np.int64), "passages": [texts[j] for j in cand]})

    for row, scores in zip(rows, to_spread([r["ranker_scores"] for r in rows], a.spread)):
        row["ranker_scores"] = scores.astype(np.float32)
    settings = load_config().train.retriever.model_copy(update={
        "loss": a.loss, "lr": a.lr, "tau_retriever": a.tau_retriever, "max_seq_length": a.max_seq_length, "passages": a.passages})
    stage = RetrieverStage(settings, cfg.model, a.max_seq_length, negatives=passages_h if a.loss == "kl_negatives" else None,
                           negative_texts=texts, branch_passage_tokens=a.branch_passage_tokens)
    model = stage.build()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr)
    total = a.epochs * math.ceil(len(rows) / a.batch)
    warm = max(1, int(0.1 * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / (total - warm)))
    for epoch in range(a.epochs):
        random.shuffle(rows)
        for start in range(0, len(rows), a.batch):
            chunk = rows[start : start + a.batch]
            batch = {k: [r[k] for r in chunk] for k in chunk[0]}
            batch["question"] = np.array(batch["question"])
            loss = stage.loss(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        print(f"epoch {epoch + 1}/{a.epochs}: last loss {loss.item():.4f}", flush=True)
    model.eval()
    branch = next(m for m in model.modules() if isinstance(m, StaticBranch))
    assert branch.weight == 1.0  # scored below at each w by rescaling, not by the branch's own weight
    trained = passages_h
    if stage.branch is not None:  # the passage side moved too: pool every passage's static part again
        with torch.no_grad():
            trained = stage.branch.vectors(torch.tensor(passages_h), *stage.branch.tokens(texts, "cpu")).numpy()
    got: dict[str, float] = {}  # the trained hybrid's per-question nDCG@10 at the first weight, for --save / --against
    for w in a.weights:
        after = ndcg(branch_scores(model, w, trained))
        if w == a.weights[0]:
            got = after
        print(f"w {w:g}: hybrid untrained {versus(ndcg(before[w]), reference)} | trained {versus(after, reference)}", flush=True)
    if a.save:
        pathlib.Path(a.save).write_text(json.dumps(got))
    if a.against:
        other = json.loads(pathlib.Path(a.against).read_text())
        print(f"w {a.weights[0]:g}: trained minus {a.against}: {interval(paired_bootstrap([got[q] - other[q] for q in other]))}", flush=True)
    print(f"settings: {vars(a)}")


if __name__ == "__main__":
    main()
