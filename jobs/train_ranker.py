"""Stage 1: train the cross-encoder ranker on the teacher's permutations with ListMLE (Ray Train).

Uses labels whose status is ``complete`` or ``repaired``; ``unusable`` and ``failed`` ones are
excluded. Writes ``RUN/ranker/model`` (loadable by ``sentence_transformers.CrossEncoder``),
``losses.jsonl`` and a manifest; Ray Train checkpoints go to ``RUN/ranker/checkpoints`` each epoch,
so a killed worker resumes from the last one.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from components import storage
from components.config import Config
from components.corpus import Collection, load_collection
from components.embedding import cluster_has_gpu
from components.errors import DataError
from components.training import LOSSES_FILE, MODEL_DIR, fit, ranker_loop, ranker_loop_config
from components.run_layout import ranker_uri
from jobs.common import init_ray, job_main, stage
from jobs.label import label

USABLE = ("complete", "repaired")


class NoUsableLabels(DataError):
    """The teacher produced no label that training may use."""


def checkpoint_root(cfg: Config, stage: str) -> str:
    """Where Ray Train keeps the stage's checkpoints: under the run directory, local or s3://."""
    return storage.join(cfg.run_dir, stage, "checkpoints")


def use_gpu(cfg: Config) -> bool:
    return cluster_has_gpu() if cfg.train.use_gpu == "auto" else bool(cfg.train.use_gpu)


# Given the trained model's local directory and a scratch folder: the directory of the model to
# keep (perhaps a new one) and what to add to the stage's manifest about that choice.
Finish = Callable[[str, str], tuple[str, dict[str, Any]]]


def train_stage(
    cfg: Config, stage_name: str, loop: Callable[[dict[str, Any]], None], rows: list[dict[str, Any]],
    loop_config: dict[str, Any], inputs: dict[str, Any], finish: Optional[Finish] = None,
    out_dir: Optional[str] = None, **details: Any,
) -> str:
    """Fit ``loop`` on Ray Train with the run's scaling and fault settings, then copy the final
    model (or the one ``finish`` derives from it) and the loss curve into ``out_dir`` (default
    ``RUN/<stage_name>/``), manifest last, so a kill at any point leaves the stage unfinished
    rather than half-chosen; return the model's URI."""
    init_ray(cfg.ray)
    t = cfg.train
    checkpoint = fit(
        loop, rows, loop_config, t.num_workers, use_gpu(cfg), t.cpus_per_worker, t.max_failures,
        checkpoint_root(cfg, stage_name), f"{stage_name}-{storage.content_hash(inputs)[:12]}",
    )
    out_dir = out_dir or storage.join(cfg.run_dir, stage_name)
    with tempfile.TemporaryDirectory() as scratch:
        local = checkpoint.to_directory(scratch)
        model_dir = f"{local}/{MODEL_DIR}"
        if finish is not None:
            model_dir, chosen = finish(model_dir, tempfile.mkdtemp(dir=scratch))
            details.update(chosen)
        storage.put_dir(model_dir, storage.join(out_dir, MODEL_DIR))
        storage.write_bytes(storage.join(out_dir, LOSSES_FILE), Path(local, LOSSES_FILE).read_bytes())
    storage.mark_stage_done(out_dir, inputs, **details)
    return storage.join(out_dir, MODEL_DIR)


@stage
def train_ranker(cfg: Config, collection: Optional[Collection] = None) -> str:
    """Label if needed, then train the ranker; return the URI of the saved model."""
    collection = collection if collection is not None else load_collection(cfg.data.path, cfg.data.on_invalid)
    labels = storage.read_parquet(label(cfg, collection)).to_pylist()
    usable = [r for r in labels if r["status"] in USABLE]
    if not usable:
        counts = {s: sum(r["status"] == s for r in labels) for s in ("unusable", "failed")}
        raise NoUsableLabels(f"no usable teacher labels among {len(labels)} ({counts}); the ranker cannot be trained")
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    rows = [{"question": r["question"], "passages": [passages[d] for d in r["ranked_ids"]]} for r in usable]
    rc = cfg.train.ranker
    inputs = {"labels": storage.content_hash([(r["question_id"], r["ranked_ids"]) for r in usable]),
              "train": rc.model_dump(), "workers": cfg.train.num_workers, "seed": cfg.seed}
    out = ranker_uri(cfg)
    if storage.stage_is_current(out, inputs):
        print(f"ranker: up to date at {out}, skipping")
        return storage.join(out, MODEL_DIR)
    model = train_stage(
        cfg, "ranker", ranker_loop, rows, ranker_loop_config(cfg), inputs,
        labels_used=len(rows), labels_total=len(labels), teacher=usable[0]["model"],
    )
    print(f"ranker: trained on {len(rows)} of {len(labels)} labels → {model}")
    return model


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    return job_main(__doc__, train_ranker, argv, llm_options=True, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
