"""Ray Train loops for both distillation stages, one generic epoch loop underneath.

Each worker builds its model, wraps it for data parallelism (``prepare_model``: DDP over gloo on
CPUs, NCCL on GPUs), reads its shard of the Ray Dataset, and after every epoch reports a
checkpoint holding the model (in a format other tools load), the optimizer and scheduler state,
and the per-step losses (with the worker process that computed each, so a resume is visible, and
the wall-clock time each step ended, so throughput can be read without start-up costs). A
worker that dies is replaced and the loop resumes from the last checkpoint (``FailureConfig``), so
at most one epoch of work is repeated.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from typing import Any, Callable, Protocol

import numpy as np

from components.config import Config
from components.run_layout import MODEL_DIR

STATE_FILE, LOSSES_FILE = "train_state.pt", "losses.jsonl"


class Stage(Protocol):
    """What differs between the stages: the model, its loss on a batch, how it is saved."""

    def build(self) -> Any: ...

    def loss(self, model: Any, batch: dict[str, np.ndarray]) -> Any: ...

    def save(self, model: Any, path: str) -> None: ...


class RankerStage:
    """Stage 1: cross-encoder, a listwise loss (ListMLE by default) over each question's candidates
    in the teacher's order."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def build(self) -> Any:
        from components.ranker import load_ranker

        model, self.tokenizer = load_ranker(self.config["backbone"], device="cpu")
        return model.train()

    def loss(self, model: Any, batch: dict[str, np.ndarray]) -> Any:
        import torch

        from components.losses import lambda_loss, listmle_loss, listnet_loss
        from components.ranker import pair_logits

        lists = [list(p) for p in batch["passages"]]
        width = max(len(p) for p in lists)
        mask = torch.tensor([[j < len(p) for j in range(width)] for p in lists])
        questions = [str(q) for q, p in zip(batch["question"], lists) for _ in p]
        logits = pair_logits(model, self.tokenizer, questions, [str(x) for p in lists for x in p], self.config["max_seq_length"])
        scores = torch.zeros(mask.shape, dtype=logits.dtype, device=logits.device)
        mask = mask.to(logits.device)
        scores = scores.masked_scatter(mask, logits)
        if self.config["loss"] == "listnet":
            return listnet_loss(scores, mask)
        if self.config["loss"] == "lambdaloss":
            return lambda_loss(scores, mask)
        return listmle_loss(scores, mask, self.config["listmle_top_k"])

    def save(self, model: Any, path: str) -> None:
        model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)


class RetrieverStage:
    """Stage 2: the retriever learns KL(ranker ‖ retriever) over each question's candidates. The
    passage side is either frozen (rows carry the index's ``passage_emb``) or trained (rows carry
    the ``passages`` text, encoded here by the same model, as in the symmetric base encoder)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def build(self) -> Any:
        import tempfile

        from sentence_transformers import SentenceTransformer

        from components.encoders import local_model, resolve_model

        self.scratch = tempfile.TemporaryDirectory()  # a previous round's model under s3:// is fetched here
        model = SentenceTransformer(resolve_model(local_model(self.config["model"], self.scratch.name)), device="cpu")
        self.module = model
        return model.train()

    def _encode(self, model: Any, texts: list[str], max_seq_length: int, device: Any) -> Any:
        import torch.nn.functional as F

        self.module.max_seq_length = max_seq_length  # read by tokenize
        features = {k: v.to(device) for k, v in self.module.tokenize(texts).items() if hasattr(v, "to")}
        return F.normalize(model(features)["sentence_embedding"], dim=-1)

    def loss(self, model: Any, batch: dict[str, np.ndarray]) -> Any:
        import torch

        from components.losses import distill_kl_loss

        device = next(model.parameters()).device
        questions = [str(q) for q in batch["question"]]
        if "passages" in batch:
            # one forward pass for questions and passages: DDP expects one per backward
            lists = [[str(p) for p in row] for row in batch["passages"]]
            flat = self._encode(model, questions + [p for row in lists for p in row], self.config["passage_max_seq_length"], device)
            queries, passages = flat[: len(questions)], flat[len(questions) :].view(len(lists), len(lists[0]), -1)
        else:
            queries = self._encode(model, questions, self.config["max_seq_length"], device)
            passages = torch.as_tensor(np.stack(batch["passage_emb"]), device=device, dtype=queries.dtype)
        scores = torch.einsum("bd,bnd->bn", queries, passages)
        ranker = torch.as_tensor(np.stack(batch["ranker_scores"]), device=device, dtype=queries.dtype)
        mask = torch.as_tensor(np.stack(batch["mask"]), device=device)
        return distill_kl_loss(scores, ranker, self.config["tau_retriever"], self.config["tau_ranker"], mask)

    def save(self, model: Any, path: str) -> None:
        model.max_seq_length = self.config["passage_max_seq_length"]  # what the saved encoder indexes with
        model.save(path)


def _unwrap(model: Any) -> Any:
    return model.module if hasattr(model, "module") else model


def epoch_loop(config: dict[str, Any], stage: Stage) -> None:
    """The per-worker loop shared by both stages (runs inside a Ray Train worker)."""
    import ray.train
    import ray.train.torch
    import torch

    torch.manual_seed(config["seed"])
    torch.set_num_threads(config["cpus_per_worker"])  # Ray pins OMP threads to 1 otherwise
    # Some backbone weights take no part in a stage's loss (a BERT pooler under mean pooling).
    model = ray.train.torch.prepare_model(stage.build(), parallel_strategy_kwargs={"find_unused_parameters": True})
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"])
    steps_per_epoch, epochs = config["steps_per_epoch"], config["epochs"]
    total = max(1, steps_per_epoch * epochs)
    warmup = int(total * config["warmup_ratio"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    start_epoch, losses = 0, []
    rank = ray.train.get_context().get_world_rank()
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            state = torch.load(os.path.join(d, STATE_FILE), weights_only=False)
            with open(os.path.join(d, LOSSES_FILE)) as f:
                losses = [json.loads(line) for line in f]
        _unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = state["epoch"] + 1
    shard = ray.train.get_dataset_shard("train")
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, epochs):
        model.train()
        for batch in shard.iter_batches(
            batch_size=config["batch_questions"], batch_format="numpy",
            local_shuffle_buffer_size=config["batch_questions"] * 8, local_shuffle_seed=config["seed"] + epoch,
        ):
            loss = stage.loss(model, batch)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append({"epoch": epoch, "step": step, "loss": float(loss.detach()), "pid": os.getpid(), "time": time.time()})
            if rank == 0 and (step % config.get("log_every", 10) == 0 or step == total):
                recent = np.mean([x["loss"] for x in losses[-10:]])
                print(f"{config['name']}: epoch {epoch + 1}/{epochs} step {step}/{total} loss {recent:.4f}", flush=True)
        epoch_losses = [x["loss"] for x in losses if x["epoch"] == epoch]
        metrics = {"epoch": epoch, "step": step, "loss": float(np.mean(epoch_losses)) if epoch_losses else math.nan}
        with tempfile.TemporaryDirectory() as d:
            if rank == 0:
                torch.save(
                    {"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "epoch": epoch},
                    os.path.join(d, STATE_FILE),
                )
                stage.save(_unwrap(model), os.path.join(d, MODEL_DIR))
                with open(os.path.join(d, LOSSES_FILE), "w") as f:
                    f.writelines(json.dumps(x) + "\n" for x in losses)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d) if rank == 0 else None)


def retriever_loop_config(cfg: Config, **changes: Any) -> dict[str, Any]:
    """The Stage 2 loop's settings from the run's config (``changes`` override)."""
    return {**cfg.train.retriever.model_dump(), "model": cfg.encoder.model,
            "passage_max_seq_length": cfg.encoder.max_seq_length, "seed": cfg.seed, **changes}


def ranker_loop_config(cfg: Config, **changes: Any) -> dict[str, Any]:
    """The Stage 1 loop's settings from the run's config (``changes`` override)."""
    return {**cfg.train.ranker.model_dump(), "seed": cfg.seed, **changes}


def ranker_loop(config: dict[str, Any]) -> None:
    epoch_loop(config, RankerStage(config))


def retriever_loop(config: dict[str, Any]) -> None:
    epoch_loop(config, RetrieverStage(config))


def fit(
    loop: Callable[[dict[str, Any]], None],
    rows: list[dict[str, Any]],
    loop_config: dict[str, Any],
    num_workers: int,
    use_gpu: bool,
    cpus_per_worker: int | None,
    max_failures: int,
    storage_uri: str,
    name: str,
) -> Any:
    """Run ``loop`` on ``num_workers`` Ray Train workers over ``rows``; return the final checkpoint.

    Checkpoints go to ``storage_uri`` (a local path or ``s3://``) through the same filesystem as
    every other artifact, so an S3-compatible endpoint reaches the workers too. Rerunning with the
    same ``storage_uri`` and ``name`` after the driver died resumes from the latest checkpoint.
    """
    from components import storage

    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    per_worker = len(rows) // num_workers  # Ray Train splits datasets equally across workers
    if per_worker == 0:
        raise ValueError(f"{len(rows)} training rows cannot feed {num_workers} workers")
    if cpus_per_worker is None:
        cpus_per_worker = max(1, int(ray.cluster_resources().get("CPU", 1)) // num_workers)
    config = dict(
        loop_config, name=name, cpus_per_worker=cpus_per_worker,
        steps_per_epoch=math.ceil(per_worker / loop_config["batch_questions"]),
    )
    trainer = TorchTrainer(
        loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus_per_worker}),
        run_config=RunConfig(
            name=name,
            storage_path=storage.filesystem(storage_uri)[1],
            storage_filesystem=storage.filesystem(storage_uri)[0],
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=max_failures),
        ),
        datasets={"train": ray.data.from_items(rows)},
    )
    return trainer.fit().checkpoint
