"""Distillation quality: the whole pipeline per (labelled questions, seed), teacher = the simulator.

    python benchmarks/distill_quality.py --data ../shared/datasets/squad-v1.1-dev \\
        --labels 100 250 500 1000 --seeds 0 1 --noise 0.0 [--ablations] [--set key=value ...]

Each configuration is a full ``run_pipeline`` in its own run directory under ``--out`` (rerunning
resumes: finished stages are skipped). The simulated teacher ranks answer-bearing (or judged
relevant) passages first with Gaussian noise ``--noise`` on 0/1 relevance; every figure printed
names it, the data, and the split. Prints one row per retriever and configuration, then the mean
and spread over seeds, and the dev-chosen weight-averaging α of each distilled retriever. The
console is the jobs' quiet one: stage lines and bars here, Ray's and the stages' logs in each run's
``RUN/logs/pipeline.log`` (``--verbose`` prints them here instead).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

from components.config import load_config
from components.corpus import load_collection
from components.metrics import paired_bootstrap
from components.report import delta_cell
from components.llm.teacher_sim import Oracle, SimSettings, SimulatorServer, TeacherSimulator
from components.run import Run
from components.stages.evaluation import ABLATION_NAMES
from components.stages.pipeline import run_pipeline
from jobs.common import logs_to_run_dir

METRICS = (("top-1", ("top_k_accuracy", "1")), ("top-5", ("top_k_accuracy", "5")),
           ("top-20", ("top_k_accuracy", "20")), ("nDCG@10", ("ndcg@10",)))
# --smoke: every stage for a few seconds (short lists and sequences, one epoch), in a fresh folder.
SMOKE_SETTINGS = ["labels.num_candidates=4", "train.ranker.epochs=1", "train.ranker.max_seq_length=32",
                  "train.retriever.epochs=1", "train.retriever.max_seq_length=16", "encoder.max_seq_length=32",
                  "eval.retrievers=[base,ranker,distilled]"]


def _metric(row: dict, path: tuple[str, ...]) -> float:
    for key in path:
        row = row[key]
    return float(row)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/datasets/squad-v1.1-dev")
    parser.add_argument("--labels", type=int, nargs="+", default=[1000], help="labelled training questions")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--noise", type=float, default=0.0, help="simulator: std of Gaussian noise on its relevance scores")
    parser.add_argument("--graded", action="store_true", help="simulator: rank every candidate by grade + answer + lexical score")
    parser.add_argument("--position-bias", type=float, default=0.0, help="simulator: score lost from first prompt position to last")
    parser.add_argument("--drop", type=float, default=0.0, help="simulator: share of ids left out of a reply")
    parser.add_argument("--ablations", action="store_true", help="also train the direct and supervised ablations")
    parser.add_argument("--out", default="runs/quality")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--verbose", action="store_true", help="Ray's and the stages' logs here, not in RUN/logs/pipeline.log")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the demo collection, 16 labels, one short epoch per stage): checks that the benchmark runs, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update({"data": "demo", "labels": [16], "seeds": [0], "overrides": SMOKE_SETTINGS + args.overrides})

    collection = load_collection(args.data)
    results: dict[tuple[int, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    alphas: list[str] = []
    for seed in args.seeds:
        settings = SimSettings(noise=args.noise, seed=seed, graded=args.graded, position_bias=args.position_bias,
                               drop_rate=args.drop)
        oracle = Oracle(collection, collection.split("train").qrels)
        with SimulatorServer(TeacherSimulator(oracle, settings)) as sim:
            for n in args.labels:
                teacher = settings.model_id.split("[", 1)[1].rstrip("]").replace(",", "-").replace("=", "")
                run_dir = Path(args.out) / f"{Path(args.data).name}-{teacher}-n{n}-seed{seed}"
                cfg = load_config(None, [
                    f"run_dir={run_dir}", f"data.path={args.data}", f"seed={seed}", f"labels.max_questions={n}",
                    f"labels.endpoints=[{{base_url: '{sim.base_url}'}}]",
                    *([ "train.ablations=[direct, supervised]"] if args.ablations else []), *args.overrides,
                ])
                started = time.monotonic()
                with contextlib.nullcontext() if args.verbose else logs_to_run_dir(cfg, "pipeline"):
                    report = json.loads(Path(run_pipeline(Run(cfg))).read_text())
                minutes = (time.monotonic() - started) / 60
                test = report["dataset"]
                print(f"\n## {test['name']} {test['split']} ({test['questions']} questions), teacher "
                      f"{settings.describe()}, {report['teacher'].get('labels_used')} labels, seed {seed} ({minutes:.1f} min)")
                print("| retriever | " + " | ".join(m for m, _ in METRICS) + " | Δ nDCG@10 vs base [95% CI] | Δ top-1 [95% CI] |")
                for name, row in report["retrievers"].items():
                    values = [_metric(row, path) for _, path in METRICS]
                    for (metric, _), v in zip(METRICS, values):
                        results[(n, name)][metric].append(v)
                    vs = row.get("vs_base")
                    deltas = f" | {delta_cell(vs['ndcg@10'])} | {delta_cell(vs['top-1'])}" if vs else " | | "
                    print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + deltas + " |")
                per_question = report.get("per_question", {}).get("ndcg@10", {})
                for ablation in ABLATION_NAMES.values():  # the paper's claim: the ranker beats distilling the LLM directly
                    if "distilled" in per_question and ablation in per_question:
                        paired = paired_bootstrap([a - b for a, b in zip(per_question["distilled"], per_question[ablation])])
                        results[(n, f"Δ distilled − {ablation}, paired")]["nDCG@10"].append(paired["delta"])
                        print(f"paired, same questions: distilled − {ablation}: Δ nDCG@10 {delta_cell(paired)}")
                for stage in ("retriever", "retriever-direct", "retriever-supervised"):
                    manifest = run_dir / stage / "manifest.json"
                    dev = json.loads(manifest.read_text()).get("dev") if manifest.exists() else None
                    if dev and dev.get("alphas"):
                        curve = " ".join(f"{a:g}:{s:.3f}" for a, s in zip(dev["alphas"], dev["ndcg@10"]))
                        alphas.append(f"{stage} n={n} seed={seed}: dev nDCG@10 by α {curve} → α={dev['alpha']:g}")

    print(f"\n# {Path(args.data).name}, test split; {settings.describe()}; "
          f"mean ± std over seeds {args.seeds}")
    print("| labels | retriever | " + " | ".join(m for m, _ in METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    for (n, name), by_metric in results.items():
        cells = []
        for metric, _ in METRICS:
            v = by_metric.get(metric)
            cells.append(("" if not v else f"{statistics.mean(v):.4f}" + (f" ± {statistics.stdev(v):.4f}" if len(v) > 1 else "")))
        print(f"| {n} | {name} | " + " | ".join(cells) + " |")
    print("\n" + "\n".join(alphas))


if __name__ == "__main__":
    main()
