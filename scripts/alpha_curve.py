"""Each weight average of a finished run's base and trained query encoders, scored against gold.

A research diagnostic, not the product: the pipeline chooses α without gold (the teacher judges
the dev pools); this script shows what each α is worth by the judgements, on the run's held-out
dev questions (train split, never trained on) and on its test split, each with a paired
bootstrap 95% CI against the base (α = 0). Read it to see why a run kept the base or how much a
dev choice left on the table; choose recipes from its dev column only, never from test.

    python scripts/alpha_curve.py runs/static1/nfcorpus-noise0-graded-n1000-seed0 [--stage retriever]

Needs a run whose Stage 2 trained over the base index (``passages: frozen``, the default) with
gold judgements for its training questions.
"""

from __future__ import annotations

import argparse
import os

from components import encoders, storage
from components.config import Config, load_config
from components.index import FaissIndex
from components.metrics import paired_bootstrap, per_question_ndcg
from components.report import delta_cell
from components.retrieval import Hits
from components.run import Run
from components.run_layout import trained_model
from components.stages.dev import held_out
from components.stages.evaluation import TEST_SAMPLE_SEED
from components.weight_averaging import interpolate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--stage", default="retriever", help="retriever, retriever-direct or retriever-supervised")
    args = parser.parse_args()
    cfg: Config = load_config(None, base=storage.read_json(os.path.join(args.run_dir, "manifest.json"))["config"])
    run = Run(cfg)
    train = run.collection.split(cfg.data.train_split)
    test = run.collection.split(cfg.data.test_split)
    dev = sorted(q for q in held_out(run).questions if q in train.qrels)
    tests = test.questions.sample(cfg.data.max_test_questions, TEST_SAMPLE_SEED)
    text = dict(zip(train.questions.ids, train.questions.texts))
    sets = {"dev": (dev, [text[q] for q in dev], train.qrels), "test": (tests.ids, tests.texts, test.qrels)}
    index = FaissIndex.load(storage.join(cfg.run_dir, "index", "base"))
    base = encoders.load_encoder(cfg.encoder).state_dict()
    model = encoders.load_encoder(cfg.encoder.model_copy(update={"model": trained_model(storage.join(cfg.run_dir, args.stage))}))
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    print(f"{args.run_dir} {args.stage}: nDCG@10 by gold judgements, {len(dev)} dev and {len(tests)} test questions")
    print("| α | dev | Δ dev [95% CI] | test (diagnostic) | Δ test [95% CI] |\n|---:|---:|---|---:|---|")
    at_base: dict[str, dict[str, float]] = {}
    for alpha in sorted(set(cfg.train.retriever.interpolation) | {0.0}):  # 0: the base, what each is compared with
        model.load_state_dict(interpolate(base, trained, alpha))
        cells = []
        for name, (ids, questions, qrels) in sets.items():
            per = per_question_ndcg(Hits(*index.search(encoders.encode(model, questions, cfg.encoder), 100)), ids, qrels)
            at_base.setdefault(name, per)
            delta = paired_bootstrap([per[q] - at_base[name][q] for q in per])
            cells += [f"{sum(per.values()) / len(per):.4f}", delta_cell(delta) if alpha else ""]
        print(f"| {alpha:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
