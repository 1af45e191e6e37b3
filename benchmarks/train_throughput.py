"""Training throughput: our Ray Train stages vs. sentence-transformers' own trainers on the same
model, data, batch size and sequence length (one worker using every CPU).

    pip install -e ".[bench]"
    python benchmarks/train_throughput.py [--questions 128] [--candidates 10] [--repeats 3] [--precision bf16]

Stage 1: our ListMLE cross-encoder loop vs. ``CrossEncoderTrainer`` with ``ListMLELoss``
(respect_input_order). Stage 2, like for like: our KL loop with the passage side trained
(``passages: trained``, passages encoded in the loop) vs. ``SentenceTransformerTrainer`` with
``DistillKLDivLoss``, which encodes every column with the one model; our default, the query side
over frozen passage vectors, is printed beside them (sentence-transformers' trainer has no
frozen-vector mode to set against it). Throughput is questions/s of training after start-up,
timed the same way on both sides: from the end of the first step (which pays for lazy
initialisation) to the end of the last. Ray Train's worker start-up is printed separately. Each
pair is run ``--repeats`` times, the two sides alternating, and the median ratio is the figure:
single short runs of the same trainer were seen to differ by 20%. ``--precision bf16`` runs both
sides under bf16 autocast (ours: ``train.precision``; theirs: the trainer's ``bf16``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from components import encoders
from components.config import EncoderConfig, IndexConfig, load_config
from components.corpus import load_collection
from components.distill.lists import text_rows
from components.index import FaissIndex
from components.training import LOSSES_FILE, RankerStage, RetrieverStage, fit

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=128)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8, help="questions per step")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side of each pair, alternating")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="both sides' forward passes")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (16 questions x 4 candidates, one repeat): checks that the benchmark runs, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update({"questions": 16, "candidates": 4, "batch": 4, "max_seq_length": 32, "repeats": 1})

    import ray
    import torch
    from datasets import Dataset
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from transformers import TrainerCallback
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import ListMLELoss
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.losses import DistillKLDivLoss

    col = load_collection("demo")
    split = col.split("train")
    cfg = EncoderConfig()
    base = encoders.load_encoder(cfg)
    index = FaissIndex.build(encoders.encode(base, col.corpus.passages(), cfg), col.corpus.ids, IndexConfig(),
                             encoders.identity(base, cfg), "bench")
    questions = (split.questions.texts * 10)[: args.questions]
    ids, scores = index.search(encoders.encode(base, questions, cfg), args.candidates)
    passages = dict(zip(col.corpus.ids, col.corpus.passages()))
    n = args.candidates
    print(f"{args.questions} questions x {n} candidates, batch {args.batch} questions, max_seq_length "
          f"{args.max_seq_length}, torch threads {torch.get_num_threads()}, 1 epoch, {args.precision}")
    bf16 = args.precision == "bf16"

    class StepTimes(TrainerCallback):
        """The end of every optimiser step, the marks our loop records for itself."""

        def __init__(self) -> None:
            self.times: list[float] = []

        def on_step_end(self, *_: object, **__: object) -> None:
            self.times.append(time.perf_counter())

    def trainer_rate(make_trainer) -> float:
        with tempfile.TemporaryDirectory() as out:
            clock = StepTimes()
            trainer = make_trainer(out)
            trainer.add_callback(clock)
            trainer.train()
        return _rate(clock.times, args.batch, "sentence-transformers")

    # Stage 1 -------------------------------------------------------------------------------
    def cross_encoder_trainer(out: str) -> CrossEncoderTrainer:
        model = CrossEncoder(encoders.resolve_model(MODEL), num_labels=1, max_length=args.max_seq_length)
        data = Dataset.from_dict({"query": questions, "docs": [[passages[d] for d in row] for row in ids],
                                  "labels": [list(range(n, 0, -1)) for _ in ids]})
        return CrossEncoderTrainer(
            model=model, train_dataset=data, loss=ListMLELoss(model, respect_input_order=True),
            args=CrossEncoderTrainingArguments(output_dir=out, per_device_train_batch_size=args.batch, num_train_epochs=1,
                                               learning_rate=3e-5, save_strategy="no", report_to=[], logging_steps=1000,
                                               use_cpu=True, dataloader_num_workers=0, bf16=bf16),
        )

    ray.init(num_cpus=2, object_store_memory=256 * 1024**2, include_dashboard=False, log_to_driver=False)
    rows1 = [{"question": q, "passages": [passages[d] for d in row]} for q, row in zip(questions, ids)]
    run_cfg = load_config(None, [f"encoder.model={MODEL}", f"train.ranker.backbone={MODEL}"])
    stage1 = RankerStage(run_cfg.train.ranker.model_copy(update=dict(
        lr=3e-5, epochs=1, batch_questions=args.batch, max_seq_length=args.max_seq_length, warmup_ratio=0.0)))
    walls: list[float] = []

    def ours_stage1() -> float:
        rate, wall = _timed_fit(stage1, rows1, args.batch, "s1", args.precision)
        walls.append(wall)
        return rate

    ours, theirs = _alternate(args.repeats, ours_stage1, lambda: trainer_rate(cross_encoder_trainer))
    print(f"Stage 1 ListMLE: ours {_runs(ours)} q/s, sentence-transformers {_runs(theirs)} q/s, {_ratio(ours, theirs)} "
          f"(ours end to end incl. Ray Train start-up: {len(rows1) / np.median(walls):.2f} q/s)")

    # Stage 2 -------------------------------------------------------------------------------
    teacher = [list(np.asarray(s, np.float32)) for s in scores]
    rows2 = [{"question": q, "passage_emb": index.vectors(row), "ranker_scores": np.asarray(s, np.float32),
              "mask": np.ones(n, bool)} for q, row, s in zip(questions, ids, teacher)]
    settings = dict(lr=5e-6, epochs=1, batch_questions=args.batch, max_seq_length=args.max_seq_length, warmup_ratio=0.0, loss="kl")
    stage2 = RetrieverStage(run_cfg.train.retriever.model_copy(update=settings), MODEL, args.max_seq_length)
    ours_query_side, _ = _timed_fit(stage2, rows2, args.batch, "s2", args.precision)
    both = RetrieverStage(run_cfg.train.retriever.model_copy(update=dict(settings, passages="trained")), MODEL, args.max_seq_length)
    cols = {"query": questions, **{f"passage_{j}": [passages[row[j]] for row in ids] for j in range(n)},
            "label": [[float(x) for x in s] for s in teacher]}

    def distill_kl_trainer(out: str) -> SentenceTransformerTrainer:
        st = SentenceTransformer(encoders.resolve_model(MODEL))
        st.max_seq_length = args.max_seq_length
        return SentenceTransformerTrainer(
            model=st, train_dataset=Dataset.from_dict(cols), loss=DistillKLDivLoss(st),
            args=SentenceTransformerTrainingArguments(output_dir=out, per_device_train_batch_size=args.batch,
                                                      num_train_epochs=1, learning_rate=5e-6, save_strategy="no",
                                                      report_to=[], logging_steps=1000, use_cpu=True, bf16=bf16),
        )

    ours, theirs = _alternate(args.repeats, lambda: _timed_fit(both, text_rows(passages, questions, ids, teacher), args.batch, "s2-both", args.precision)[0],
                              lambda: trainer_rate(distill_kl_trainer))
    ray.shutdown()
    print(f"Stage 2 KL, both sides trained: ours {_runs(ours)} q/s, sentence-transformers DistillKLDivLoss "
          f"{_runs(theirs)} q/s, {_ratio(ours, theirs)} (ours query side only, frozen passage vectors: "
          f"{ours_query_side:.2f} q/s, {ours_query_side / float(np.median(theirs)):.1f}x the trainer's median)")


def _alternate(repeats: int, ours: Callable[[], float], theirs: Callable[[], float]) -> tuple[list[float], list[float]]:
    """Each side ``repeats`` times, taking turns, so that a slow spell of the machine falls on both."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        b.append(theirs())
        a.append(ours())
    return a, b


def _runs(rates: list[float]) -> str:
    return "/".join(f"{r:.2f}" for r in rates)


def _ratio(ours: list[float], theirs: list[float]) -> str:
    ratios = [a / b for a, b in zip(ours, theirs)]
    return f"ratio median {float(np.median(ratios)):.2f} (runs {_runs(ratios)})"


def _rate(times: list[float], batch: int, name: str) -> float:
    """Questions/s from step end times, the first step's end being the start mark."""
    if len(times) < 2:
        raise SystemExit(f"{name}: {len(times)} step(s) is too few to time; use more --questions")
    return (len(times) - 1) * batch / (times[-1] - times[0])


def _timed_fit(stage, rows, batch: int, name: str, precision: str) -> tuple[float, float]:
    """Questions/s of training, from the step end times the loop records, and the fit's wall time
    with start-up."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as storage:
        checkpoint = fit(stage, rows, 1, False, None, 0, storage, name, precision=precision)
        wall = time.perf_counter() - start
        with checkpoint.as_directory() as d:
            times = [json.loads(line)["time"] for line in Path(d, LOSSES_FILE).read_text().splitlines()]
    return _rate(times, batch, name), wall


if __name__ == "__main__":
    main()
