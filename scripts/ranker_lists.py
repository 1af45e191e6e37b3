"""How good Stage 2's teacher is on the lists it scores but Stage 1 never trained on, by gold.

A research diagnostic, not the product. Stage 2 learns the ranker's scores of every training
question's candidates, most of which (``extra_questions``) the LLM never labelled, so the ranker
never saw them: they are a large held-out set, free to score from the run's own cache
(``RUN/retriever/ranker_scores.parquet``). For those questions, and separately for the
LLM-labelled ones, this prints nDCG@10 (gold train judgements, ir-measures) of the candidates in
the first stage's order, in the ranker's, and in the fused order Stage 2 learns at each
``train.retriever.first_stage_weight`` (``components.distill.fusion``), each with a paired
bootstrap 95% CI against the first stage. Train-split questions only: a weight is chosen here,
never on test.

    python scripts/ranker_lists.py runs/hybrid-branch/nfcorpus-noise0-graded-n1000-seed1 --weights 0 0.5 1 2

``--against RUN`` pairs this run's ranker with another run's on the lists both scored (a copy of the
run trained with another Stage 1 setting: the same candidates, labels and dev questions), question
by question: how a Stage 1 setting is chosen without touching test.

Needs a run whose Stage 2 scored its lists (a finished ``train-retriever``) and gold judgements
for its training questions.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from components import storage
from components.distill.fusion import fuse_first_stage
from components.distill.rescore import stored_scores
from components.metrics import paired_bootstrap, per_question_ndcg
from components.report import delta_cell
from components.retrieval import Hits
from components.run import Run, run_config


def ordered(candidates: list[list[str]], scores: list[np.ndarray]) -> Hits:
    """Each list's candidates best first by ``scores`` (ties keep the first stage's order)."""
    orders = [np.argsort(-np.asarray(s), kind="stable") for s in scores]
    return Hits([[c[i] for i in o] for c, o in zip(candidates, orders)], [[float(s[i]) for i in o] for s, o in zip(scores, orders)])


def scored_lists(run_dir: str) -> tuple[Run, dict[str, Any], list[tuple[dict[str, Any], np.ndarray]], set[str]]:
    """A run, its train judgements, each training question's candidate list with the current
    ranker's cached scores (lists it holds none for are left out) and the LLM-labelled questions."""
    cfg = run_config(run_dir)
    run = Run(cfg)
    qrels = run.collection.split(cfg.data.train_split).qrels
    cands = storage.read_parquet(storage.join(cfg.run_dir, "candidates", "stage2", "candidates.parquet")).to_pylist()
    labelled = set(storage.read_parquet(storage.join(cfg.run_dir, "labels", "labels.parquet")).column("question_id").to_pylist())
    rows = [r for r in cands if r["question_id"] in qrels]
    scores = stored_scores(cfg, [r["question"] for r in rows], [list(r["candidate_ids"]) for r in rows], [r["scores"] for r in rows])
    return run, qrels, [(r, np.asarray(s)) for r, s in zip(rows, scores) if s is not None], labelled


def ranker_ndcg(group: list[tuple[dict[str, Any], np.ndarray]], qrels: dict[str, Any]) -> dict[str, float]:
    """nDCG@10 of each list in the ranker's order, by question."""
    return per_question_ndcg(ordered([list(r["candidate_ids"]) for r, _ in group], [s for _, s in group]),
                             [r["question_id"] for r, _ in group], qrels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0, 0.25, 0.5, 1.0, 2.0, 4.0],
                        help="first-stage weights to fuse at (0: the ranker alone)")
    parser.add_argument("--against", metavar="RUN", help="pair this run's ranker with RUN's on the lists both scored")
    args = parser.parse_args()
    _, qrels, found, labelled = scored_lists(args.run_dir)
    groups = {"never labelled (Stage 1 never saw them)": [(r, s) for r, s in found if r["question_id"] not in labelled],
              "LLM-labelled (Stage 1's own, and the dev questions)": [(r, s) for r, s in found if r["question_id"] in labelled]}
    other = None
    if args.against:
        _, _, found_other, _ = scored_lists(args.against)
        other = {(r["question_id"], tuple(r["candidate_ids"])): (r, s) for r, s in found_other}
    print(f"{args.run_dir}: Stage 2's candidate lists by gold train judgements (nDCG@10 of each list's order)")
    for name, group in groups.items():
        if not group:
            continue
        ids = [r["question_id"] for r, _ in group]
        candidates = [list(r["candidate_ids"]) for r, _ in group]
        cosines = [list(r["scores"]) for r, _ in group]
        first = per_question_ndcg(Hits(candidates, cosines), ids, qrels)
        print(f"\n{name}: {len(group)} questions\n| order | nDCG@10 | Δ vs first stage [95% CI] |\n|---|---:|---|")
        print(f"| first stage | {np.mean(list(first.values())):.4f} | |")
        for w in args.weights:
            fused = fuse_first_stage([np.asarray(s) for _, s in group], cosines, w)
            per = per_question_ndcg(ordered(candidates, fused), ids, qrels)
            label = "ranker" if w == 0 else f"ranker + {w:g} × first stage"
            print(f"| {label} | {np.mean(list(per.values())):.4f} | {delta_cell(paired_bootstrap([per[q] - first[q] for q in per]))} |")
        if other is not None:
            both = [(r, s) for r, s in group if (r["question_id"], tuple(r["candidate_ids"])) in other]
            mine = ranker_ndcg(both, qrels)
            theirs = ranker_ndcg([other[(r["question_id"], tuple(r["candidate_ids"]))] for r, _ in both], qrels)
            print(f"| ranker − {args.against}'s ranker ({len(both)} lists both scored) | | "
                  f"{delta_cell(paired_bootstrap([mine[q] - theirs[q] for q in mine]))} |")


if __name__ == "__main__":
    main()
