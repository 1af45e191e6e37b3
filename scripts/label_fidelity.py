"""How faithful a simulated teacher's labels are, and what shuffled passes buy against position bias.

A research diagnostic for the simulator only (it needs the judgements the simulator ranks by). For
the lists a run labelled, each label set is scored two ways:

- pairwise accuracy on the pairs of candidates the *unbiased* simulator tells apart (same prompt,
  ``position_bias`` 0: grade + answer + lexical score). The simulator's score ties on most pairs
  (its lexical score is a ratio of small counts), and it breaks ties by prompt position, so a
  Kendall's τ against its order would reward copying the candidate order; untied pairs do not;
- nDCG@10 of the list order against the train judgements (ir-measures), the information the
  ranker and the direct ablation get from each list.

Then the same lists are labelled again offline by the simulator at ``--position-bias`` with
1 to 9 passes, in the pipeline's own shuffles (``components.labelling.make_tasks``) and Borda
aggregate, the first pass in candidate order (the default) or shuffled (``shuffle_candidates``):
what more passes would buy before paying for them.

    python scripts/label_fidelity.py RUN_DIR [--position-bias 1.0] [--passes 1 3 5 9]
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

import numpy as np

from components import storage
from components.run import run_config
from components.corpus import load_collection
from components.labelling import make_tasks
from components.llm.aggregation import borda
from components.llm.permutation import parse_permutation
from components.llm.prompts import ranking_messages, truncate_words
from components.llm.teacher_sim import Oracle, SimSettings, TeacherSimulator
from components.metrics import per_question_ndcg
from components.retrieval import Hits


def pair_accuracy(order: Sequence[str], score: dict[str, float]) -> float:
    """Share of the pairs with different scores that ``order`` puts the right way round (nan: none)."""
    pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1 :] if score[a] != score[b]]
    return sum(score[a] > score[b] for a, b in pairs) / len(pairs) if pairs else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--position-bias", type=float, default=1.0, help="simulator bias for the offline passes")
    parser.add_argument("--passes", type=int, nargs="+", default=[1, 3, 5, 9])
    args = parser.parse_args()
    cfg = run_config(args.run_dir)
    collection = load_collection(cfg.data.path)
    qrels = collection.split(cfg.data.train_split).qrels
    text = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    rows = storage.read_parquet(os.path.join(args.run_dir, "labels", "labels.parquet")).to_pylist()
    oracle = Oracle(collection, qrels)
    width = cfg.labels.max_words_per_passage
    truth = {r["question_id"]: dict(zip(r["candidate_ids"], oracle.graded_relevance(
        r["question"], [truncate_words(" ".join(text[d].split()), width) for d in r["candidate_ids"]]))) for r in rows}
    tied = np.mean([1 - np.mean([s[a] != s[b] for i, a in enumerate(s) for b in list(s)[i + 1 :]]) for s in truth.values()])

    def score(name: str, orders: dict[str, list[str]]) -> None:
        accuracy = np.nanmean([pair_accuracy(orders[q], truth[q]) for q in orders])
        ndcg = per_question_ndcg(Hits(ids=list(orders.values()), scores=[]), list(orders), qrels)
        judged = [v for q, v in ndcg.items() if set(orders[q]) & {d for d, g in qrels.get(q, {}).items() if g > 0}]
        print(f"| {name} | {accuracy:.3f} | {np.mean(judged):.3f} ({len(judged)} lists) |")

    print(f"{args.run_dir}: {len(rows)} labelled lists; {tied:.0%} of candidate pairs tie in the unbiased simulator's score")
    print("| labels | pairwise accuracy on untied pairs | nDCG@10 of the list order, judged lists |\n|---|---|---|")
    score("candidate order (the base retriever)", {r["question_id"]: r["candidate_ids"] for r in rows})
    score(f"the run's labels ({rows[0]['model']}, {rows[0]['passes']} pass(es))", {r["question_id"]: r["ranked_ids"] for r in rows})
    biased = TeacherSimulator(oracle, SimSettings(graded=True, position_bias=args.position_bias))
    ids, questions, cands = [r["question_id"] for r in rows], [r["question"] for r in rows], [r["candidate_ids"] for r in rows]
    for shuffled in (False, True):
        for passes in args.passes:
            tasks = make_tasks(ids, questions, cands, text.get, cfg.labels.model_copy(update={"passes": passes, "shuffle_candidates": shuffled}), cfg.seed)
            ranked: dict[str, list[list[str]]] = {}
            for t in tasks:
                reply = biased.ranking_text(ranking_messages(t.question, t.passages, width)[1]["content"])
                ranked.setdefault(t.question_id, []).append([t.candidate_ids[i] for i in parse_permutation(reply, len(t.passages)).order])
            score(f"simulator, position_bias {args.position_bias:g}, {passes} pass(es), first {'shuffled' if shuffled else 'in candidate order'}",
                  {q: borda(r) for q, r in ranked.items()})


if __name__ == "__main__":
    main()
