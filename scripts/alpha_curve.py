"""Each weight average of a finished run's base and trained query encoders, scored against gold.

A research diagnostic, not the product: the pipeline chooses α without gold (the teacher judges
the dev pools); this script shows what each α is worth by the judgements, on the run's held-out
dev questions (train split, never trained on) and on its test split, each with a paired
bootstrap 95% CI against the base (α = 0). Read it to see why a run kept the base or how much a
dev choice left on the table; choose recipes from its dev column only, never from test.

    python scripts/alpha_curve.py runs/static1/nfcorpus-noise0-graded-n1000-seed0 [--stage retriever]

``--against`` compares two recipes on the same seeds' runs (the same labels and dev questions,
another Stage 2 setting), question by question, which is how a Stage 2 option is chosen on dev.
``--reference INDEX`` compares each run's kept α with the encoder that built another index,
searching it (e.g. plain MiniLM's, ``idistill index --run-dir R`` → ``R/index/base``, against a
hybrid student), on the same dev and test questions: how a student is chosen on dev, where the
students' bases differ.

Needs a run whose Stage 2 trained over the base index (``passages: frozen``, the default) or a
hybrid's ``passages: branch`` (each α's own index, which the pipeline made under
``RUN/<stage>/dev/``), with gold judgements for its training questions.
"""

from __future__ import annotations

import argparse
import os

from components import encoders, storage
from components.config import Config, EncoderConfig
from components.index import FaissIndex
from components.metrics import paired_bootstrap, per_question_ndcg
from components.report import delta_cell
from components.retrieval import Hits
from components.run import Run, run_config
from components.run_layout import trained_model
from components.stages.dev import held_out
from components.stages.evaluation import TEST_SAMPLE_SEED
from components.weight_averaging import interpolate


Curve = dict[float, dict[str, dict[str, float]]]  # α → split → question → nDCG@10


QuestionSets = dict[str, tuple[list[str], list[str], dict[str, dict[str, int]]]]  # split → ids, texts, gold


def question_sets(cfg: Config) -> QuestionSets:
    """The run's held-out dev questions (train split, never trained on) and its test questions."""
    run = Run(cfg)
    train = run.collection.split(cfg.data.train_split)
    test = run.collection.split(cfg.data.test_split)
    dev = sorted(q for q in held_out(run).questions if q in train.qrels)
    tests = test.questions.sample(cfg.data.max_test_questions, TEST_SAMPLE_SEED)
    text = dict(zip(train.questions.ids, train.questions.texts))
    return {"dev": (dev, [text[q] for q in dev], train.qrels), "test": (tests.ids, tests.texts, test.qrels)}


def reference_scores(index_dir: str, sets: QuestionSets) -> dict[str, dict[str, float]]:
    """Split → question → nDCG@10 of the encoder that built ``index_dir``, searching it."""
    index = FaissIndex.load(index_dir)
    built_by = index.manifest["encoder"]
    encoder = EncoderConfig(model=built_by["model"], max_seq_length=built_by["max_seq_length"], normalize=built_by["normalize"])
    model = encoders.load_encoder(encoder)
    return {name: per_question_ndcg(Hits(*index.search(encoders.encode(model, questions, encoder), 100)), ids, qrels)
            for name, (ids, questions, qrels) in sets.items()}


def curve(run_dir: str, stage: str) -> tuple[Curve, int, int]:
    """Per α, each dev and test question's nDCG@10 by gold judgements; the dev and test counts."""
    cfg = run_config(run_dir)
    sets = question_sets(cfg)
    dev, tests = sets["dev"][0], sets["test"][0]
    index = FaissIndex.load(storage.join(cfg.run_dir, "index", "base"))
    own_index = cfg.train.retriever.passages == "branch"  # each α re-pooled the passages: the pipeline indexed each
    base = encoders.load_encoder(cfg.encoder).state_dict()
    model = encoders.load_encoder(cfg.encoder.model_copy(update={"model": trained_model(storage.join(cfg.run_dir, stage))}))
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    out: Curve = {}
    for alpha in sorted(set(cfg.train.retriever.interpolation) | {0.0}):  # 0: the base, what each is compared with
        model.load_state_dict(interpolate(base, trained, alpha))
        searched = FaissIndex.load(storage.join(cfg.run_dir, stage, "dev", f"alpha-{alpha:g}", "index")) if own_index and alpha else index
        out[alpha] = {name: per_question_ndcg(Hits(*searched.search(encoders.encode(model, questions, cfg.encoder), 100)), ids, qrels)
                      for name, (ids, questions, qrels) in sets.items()}
    return out, len(dev), len(tests)


def differences(mine: list[Curve], theirs: list[Curve], alpha: float, other_alpha: float, split: str) -> list[float]:
    """Question by question within each run pair, ``mine`` at α minus ``theirs`` at ``other_alpha``,
    pooled over the pairs (each seed's dev questions are its own)."""
    out = []
    for m, t in zip(mine, theirs):
        out += [m[alpha][split][q] - t[other_alpha][split][q] for q in m[alpha][split]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", help="one run, or one per seed of a recipe")
    parser.add_argument("--stage", default="retriever", help="retriever, retriever-direct or retriever-supervised")
    parser.add_argument("--against", nargs="+", default=[], metavar="RUN",
                        help="the same seeds' runs of another recipe, in the same order: print this one minus it at each α")
    parser.add_argument("--reference", metavar="INDEX",
                        help="an index directory: each run's kept α against the encoder that built it, searching it")
    args = parser.parse_args()
    if args.against and len(args.against) != len(args.run_dirs):
        raise SystemExit(f"alpha_curve: error: {len(args.run_dirs)} runs against {len(args.against)}: one per seed, in the same order")
    mine = [curve(r, args.stage) for r in args.run_dirs]
    for run_dir, (c, devs, tests) in zip(args.run_dirs, mine):
        print(f"{run_dir} {args.stage}: nDCG@10 by gold judgements, {devs} dev and {tests} test questions")
        print("| α | dev | Δ dev [95% CI] | test (diagnostic) | Δ test [95% CI] |\n|---:|---:|---|---:|---|")
        for alpha, splits in c.items():
            cells = []
            for name, per in splits.items():
                delta = paired_bootstrap([per[q] - c[0.0][name][q] for q in per])
                cells += [f"{sum(per.values()) / len(per):.4f}", delta_cell(delta) if alpha else ""]
            print(f"| {alpha:g} | " + " | ".join(cells) + " |")
    if args.against:
        theirs = [curve(r, args.stage)[0] for r in args.against]
        print(f"\nthis recipe minus --against, per question within each of {len(mine)} run pairs, pooled: same α, "
              "and the α each run's manifest kept")
        print("| α | Δ dev [95% CI] | Δ test (diagnostic) [95% CI] |\n|---|---|---|")
        for alpha in mine[0][0]:
            cells = [delta_cell(paired_bootstrap(differences([c for c, _, _ in mine], theirs, alpha, alpha, split)))
                     for split in ("dev", "test")]
            print(f"| {alpha:g} | " + " | ".join(cells) + " |")
        kept = [(kept_alpha(r, args.stage), kept_alpha(o, args.stage)) for r, o in zip(args.run_dirs, args.against)]
        cells = []
        for split in ("dev", "test"):
            pooled = []
            for (c, _, _), t, (a, b) in zip(mine, theirs, kept):
                pooled += differences([c], [t], a, b, split)
            cells.append(delta_cell(paired_bootstrap(pooled)))
        print(f"| kept ({', '.join(f'{a:g} vs {b:g}' for a, b in kept)}) | " + " | ".join(cells) + " |")
    if args.reference:
        pooled = {"dev": [], "test": []}
        for run_dir, (c, _, _) in zip(args.run_dirs, mine):
            ref = reference_scores(args.reference, question_sets(run_config(run_dir)))
            kept_curve = c[kept_alpha(run_dir, args.stage)]
            for split in pooled:
                pooled[split] += [kept_curve[split][q] - ref[split][q] for q in kept_curve[split]]
        print(f"\nkept α minus the encoder of {args.reference}, per question, pooled over {len(mine)} runs")
        print("| Δ dev [95% CI] | Δ test (diagnostic) [95% CI] |\n|---|---|")
        print("| " + " | ".join(delta_cell(paired_bootstrap(pooled[split])) for split in ("dev", "test")) + " |")


def kept_alpha(run_dir: str, stage: str) -> float:
    """The α the run's Stage 2 kept (its manifest's dev choice)."""
    return float(storage.read_json(os.path.join(run_dir, stage, "manifest.json"))["dev"]["alpha"])


if __name__ == "__main__":
    main()
