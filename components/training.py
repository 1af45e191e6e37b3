"""The one Ray Train runner for both distillation stages: a generic epoch loop, the stage objects
that say what differs (model, loss, saving), and ``train_stage``, which fits a stage and stores
its model under the run directory.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import numpy as np

from components import console, storage, tracking
from components.config import Config, RankerTrainConfig, RetrieverTrainConfig
from components.precision import Precision, autocast
from components.embedding import cluster_has_gpu
from components.encoders import set_max_seq_length
from components.errors import DataError
from components.run import init_ray
from components.run_layout import MODEL_DIR, TRAINED_DIR, put_model, switch_model

STATE_FILE, LOSSES_FILE = "train_state.pt", "losses.jsonl"


class StageSettings(Protocol):
    """The optimisation settings both stages' config sections share."""

    epochs: int
    lr: float
    batch_questions: int
    warmup_ratio: float


class Stage(Protocol):
    """What differs between the stages: the model, its loss on a batch, how it is saved. A stage
    object is pickled to every Ray Train worker, so it carries typed settings, never a live model."""

    settings: StageSettings

    def build(self) -> Any: ...

    def loss(self, model: Any, batch: dict[str, np.ndarray]) -> Any: ...

    def save(self, model: Any, path: str) -> None: ...


@dataclass(frozen=True)
class LoopSettings:
    """What the epoch loop needs beyond the stage: fixed by ``fit`` from the data and the cluster."""

    name: str
    seed: int
    cpus_per_worker: int
    steps_per_epoch: int
    rows_per_worker: int
    checkpoint_every: Optional[int] = None  # steps between mid-epoch checkpoints (None: epoch ends only)
    log_every: int = 10
    progress: Any = None  # a ``console.RemoteBar`` handle that rank 0 advances every step
    precision: Precision = "fp32"  # the forward passes' arithmetic (``components.precision``)


class RankerStage:
    """Stage 1: cross-encoder, a listwise loss (``train.ranker.loss``) over each question's
    candidates in the teacher's order; a residual ranker's rows carry each pair's first-stage
    cosine (``prior``)."""

    def __init__(self, settings: RankerTrainConfig) -> None:
        self.settings = settings

    def build(self) -> Any:
        from components.losses import RANKER_LOSSES
        from components.ranker import load_ranker, zero_head

        self.objective = RANKER_LOSSES[self.settings.loss].from_settings(self.settings)
        model, self.tokenizer = load_ranker(self.settings.backbone, device="cpu")
        if self.settings.prior_temperature is not None:
            zero_head(model)
        return model.train()

    def loss(self, model: Any, batch: dict[str, np.ndarray]) -> Any:
        import torch

        from components.ranker import pair_logits

        lists = [list(p) for p in batch["passages"]]
        width = max(len(p) for p in lists)
        mask = torch.tensor([[j < len(p) for j in range(width)] for p in lists])
        questions = [str(q) for q, p in zip(batch["question"], lists) for _ in p]
        logits = pair_logits(model, self.tokenizer, questions, [str(x) for p in lists for x in p], self.settings.max_seq_length,
                             self.settings.pairs_per_forward).float()  # the loss in fp32 under bf16 autocast too
        if self.settings.prior_temperature is not None:  # residual: the first-stage cosine carries the start
            prior = torch.tensor([float(x) for row in batch["prior"] for x in row], dtype=logits.dtype, device=logits.device)
            logits = logits + prior / self.settings.prior_temperature
        scores = torch.zeros(mask.shape, dtype=logits.dtype, device=logits.device)
        mask = mask.to(logits.device)
        scores = scores.masked_scatter(mask, logits)
        return self.objective(scores, mask)

    def save(self, model: Any, path: str) -> None:
        model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)


class RetrieverStage:
    """Stage 2: the retriever learns the ranker's distribution over each question's candidates
    (``train.retriever.loss``). The passage side is either frozen (rows carry the index's
    ``passage_emb``), trained (rows carry the ``passages`` text, encoded here by the same model,
    as in the symmetric base encoder), or, for a hybrid student, ``branch``: rows carry both, and
    only the static part of each passage vector is pooled again (``hybrid_student.BranchPassages``). With a bank of frozen ``negatives``, each row's
    ``negative_index`` says which bank rows are its own candidates, so they are not counted twice."""

    def __init__(self, settings: RetrieverTrainConfig, model: str, passage_max_seq_length: int,
                 negatives: Optional[np.ndarray] = None, negative_texts: Optional[list[str]] = None,
                 branch_passage_tokens: Optional[int] = None) -> None:
        self.settings, self.model, self.passage_max_seq_length = settings, model, passage_max_seq_length
        self.branch_passage_tokens = branch_passage_tokens  # a hybrid's encoder.branch_passage_tokens
        self.negatives = negatives  # (m, dim) frozen passage vectors; rows then carry ``negative_index``
        self.negative_texts = negative_texts  # passages: branch: the negatives' text, pooled again at every step
        self.bank: Any = None  # the negatives as a tensor, made once per worker
        self.bank_tokens: Any = None  # passages: branch: their token ids and kept-token mask, once per worker

    @classmethod
    def from_config(cls, cfg: Config, model: Optional[str] = None) -> "RetrieverStage":
        """Stage 2 of ``cfg``, starting from ``model`` (default: the base encoder)."""
        return cls(cfg.train.retriever, model or cfg.encoder.model, cfg.encoder.max_seq_length,
                   branch_passage_tokens=cfg.encoder.branch_passage_tokens)

    def build(self) -> Any:
        from components.encoders import local_model, open_model, pool_passages, resolve_model
        from components.hybrid_student import BranchPassages, freeze_base
        from components.losses import RETRIEVER_LOSSES

        self.objective = RETRIEVER_LOSSES[self.settings.loss].from_settings(self.settings)
        self.scratch = tempfile.TemporaryDirectory()  # a previous round's model under s3:// is fetched here
        model = open_model(resolve_model(local_model(self.model, self.scratch.name)))
        if self.branch_passage_tokens is not None:
            # saved with the model, so every index idistill builds with it pools as many as the base index
            pool_passages(model, self.branch_passage_tokens, self.model)
        freeze_base(model)  # a hybrid student trains its static branch only
        self.module = model
        self.branch = BranchPassages(model, self.passage_max_seq_length) if self.settings.passages == "branch" else None
        return model.train()

    def _encode(self, model: Any, texts: list[str], max_seq_length: int, device: Any) -> Any:
        import torch.nn.functional as F

        set_max_seq_length(self.module, max_seq_length)  # read by tokenize
        features = {k: v.to(device) for k, v in self.module.tokenize(texts).items() if hasattr(v, "to")}
        return F.normalize(model(features)["sentence_embedding"].float(), dim=-1)  # fp32 under bf16 autocast too

    def loss(self, model: Any, batch: dict[str, np.ndarray]) -> Any:
        import torch

        device = next(model.parameters()).device
        questions = [str(q) for q in batch["question"]]
        if self.settings.passages == "trained":
            # one forward pass for questions and passages: DDP expects one per backward
            lists = [[str(p) for p in row] for row in batch["passages"]]
            flat = self._encode(model, questions + [p for row in lists for p in row], self.passage_max_seq_length, device)
            queries, passages = flat[: len(questions)], flat[len(questions) :].view(len(lists), len(lists[0]), -1)
        else:
            queries = self._encode(model, questions, self.settings.max_seq_length, device)
            passages = torch.as_tensor(np.stack(batch["passage_emb"]), device=device, dtype=queries.dtype)
            if self.branch is not None:
                texts = [str(p) for row in batch["passages"] for p in row]
                passages = self.branch.vectors(passages, *self.branch.tokens(texts, device))
        with torch.autocast(device.type, enabled=False):  # cosines / tau_retriever in fp32 under bf16 autocast too
            return self._scored(queries, passages, batch)

    def _scored(self, queries: Any, passages: Any, batch: dict[str, np.ndarray]) -> Any:
        """The stage's loss from the encoded questions and their candidates (and the negative bank)."""
        import torch

        device = queries.device
        scores = torch.einsum("bd,bnd->bn", queries, passages)
        ranker = torch.as_tensor(np.stack(batch["ranker_scores"]), device=device, dtype=queries.dtype)
        mask = torch.as_tensor(np.stack(batch["mask"]), device=device)
        if self.negatives is None:
            return self.objective(scores, ranker, mask)
        if self.bank is None:  # the vectors arrive read-only
            self.bank = torch.tensor(np.array(self.negatives), device=device, dtype=queries.dtype)
            if self.branch is not None:
                self.bank_tokens = self.branch.tokens(list(self.negative_texts or []), device)
        bank = self.bank if self.branch is None else self.branch.vectors(self.bank, *self.bank_tokens)
        negative_scores = queries @ bank.T
        own = torch.as_tensor(np.stack(batch["negative_index"]), device=device)  # (batch, n): bank row or -1
        negative_mask = torch.ones_like(negative_scores, dtype=torch.bool)
        rows = torch.arange(own.shape[0], device=device).unsqueeze(1).expand_as(own)
        negative_mask[rows[own >= 0], own[own >= 0]] = False
        return self.objective(scores, ranker, mask, negative_scores, negative_mask)

    def save(self, model: Any, path: str) -> None:
        set_max_seq_length(model, self.passage_max_seq_length)  # what the saved encoder indexes with
        model.save(path)


def _unwrap(model: Any) -> Any:
    return model.module if hasattr(model, "module") else model


@dataclass
class _Training:
    """One worker's training state: what a checkpoint saves and restores."""

    model: Any
    optimizer: Any
    scheduler: Any
    losses: list[dict[str, Any]]
    start_epoch: int = 0
    start_batch: int = 0  # batches of ``start_epoch`` already trained on (a mid-epoch checkpoint)


def _setup(stage: Stage, loop: LoopSettings) -> _Training:
    """The wrapped model, AdamW and a linear warm-up then decay over all the run's steps."""
    import ray.train.torch
    import torch

    torch.manual_seed(loop.seed)
    torch.set_num_threads(loop.cpus_per_worker)  # Ray pins OMP threads to 1 otherwise
    # Some backbone weights take no part in a stage's loss (a BERT pooler under mean pooling).
    model = ray.train.torch.prepare_model(stage.build(), parallel_strategy_kwargs={"find_unused_parameters": True})
    # fused: one kernel over all parameters, as transformers' Trainer defaults to (3% of a Stage 1 step on CPU)
    optimizer = torch.optim.AdamW(model.parameters(), lr=stage.settings.lr, fused=True)
    total = max(1, loop.steps_per_epoch * stage.settings.epochs)
    warmup = int(total * stage.settings.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    return _Training(model, optimizer, scheduler, [])


def _restore(state: _Training) -> None:
    """Continue from the latest checkpoint, if Ray Train hands one over (a replaced worker, a rerun)."""
    import ray.train
    import torch

    checkpoint = ray.train.get_checkpoint()
    if not checkpoint:
        return
    with checkpoint.as_directory() as d:
        saved = torch.load(os.path.join(d, STATE_FILE), weights_only=True)  # tensors and plain values only
        with open(os.path.join(d, LOSSES_FILE)) as f:
            state.losses = [json.loads(line) for line in f]
    _unwrap(state.model).load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    state.start_epoch, state.start_batch = saved["epoch"], saved["batches_done"]


def _step(stage: Stage, state: _Training, batch: dict[str, np.ndarray], precision: Precision = "fp32") -> float:
    import torch

    with autocast(precision, next(state.model.parameters()).device):
        loss = stage.loss(state.model, batch)
    state.optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.model.parameters(), 1.0)
    state.optimizer.step()
    state.scheduler.step()
    return float(loss.detach())


def _checkpoint(stage: Stage, state: _Training, epoch: int, batches_done: int, step: int, rank: int) -> None:
    """Report progress to Ray Train; rank 0 attaches the model, the optimizer, scheduler and RNG
    state, where in the epoch it is, and the losses, so a resume continues at the next batch."""
    import ray.train
    import torch

    epoch_losses = [x["loss"] for x in state.losses if x["epoch"] == epoch]
    metrics = {"epoch": epoch, "step": step, "loss": float(np.mean(epoch_losses)) if epoch_losses else math.nan}
    with tempfile.TemporaryDirectory() as d:
        if rank == 0:
            torch.save(
                {"model": _unwrap(state.model).state_dict(), "optimizer": state.optimizer.state_dict(),
                 "scheduler": state.scheduler.state_dict(), "rng": torch.get_rng_state(),
                 "epoch": epoch, "batches_done": batches_done},
                os.path.join(d, STATE_FILE),
            )
            stage.save(_unwrap(state.model), os.path.join(d, MODEL_DIR))
            with open(os.path.join(d, LOSSES_FILE), "w") as f:
                f.writelines(json.dumps(x) + "\n" for x in state.losses)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d) if rank == 0 else None)


def _shard(loop: LoopSettings, rank: int, world: int) -> list[dict[str, Any]]:
    """This worker's rows: every ``world``-th row from ``rank``, in the driver's order, as many on
    every worker (DDP steps together). Taken from the whole dataset, not a streaming split, so the
    same worker gets the same rows after a restart and a resume can skip exactly what was done."""
    import ray.train

    rows = sorted(ray.train.get_dataset_shard("train").iter_rows(), key=lambda r: r["_row"])
    return [r for r in rows if r["_row"] % world == rank][: loop.rows_per_worker]


def _batches(rows: list[dict[str, Any]], size: int, seed: int) -> list[dict[str, list[Any]]]:
    """One epoch's batches, shuffled by ``seed`` (the same order on a rerun), column-wise."""
    order = np.random.default_rng(seed).permutation(len(rows))
    chunks = [[rows[i] for i in order[b : b + size]] for b in range(0, len(order), size)]
    return [{k: [r[k] for r in chunk] for k in chunk[0] if k != "_row"} for chunk in chunks]


def epoch_loop(config: dict[str, Any]) -> None:
    """The per-worker loop shared by both stages (runs inside a Ray Train worker); ``config``
    holds the ``stage`` object and the ``loop`` settings."""
    import ray.train

    stage: Stage = config["stage"]
    loop: LoopSettings = config["loop"]
    epochs = stage.settings.epochs
    total = max(1, loop.steps_per_epoch * epochs)
    state = _setup(stage, loop)
    _restore(state)
    context = ray.train.get_context()
    rank = context.get_world_rank()
    rows = _shard(loop, rank, context.get_world_size())
    if state.start_batch >= loop.steps_per_epoch:  # the checkpoint closed its epoch
        state.start_epoch, state.start_batch = state.start_epoch + 1, 0
    step = state.start_epoch * loop.steps_per_epoch + state.start_batch
    for epoch in range(state.start_epoch, epochs):
        state.model.train()
        batches = _batches(rows, stage.settings.batch_questions, loop.seed + epoch)
        first = state.start_batch if epoch == state.start_epoch else 0
        if first:
            print(f"{loop.name}: resuming epoch {epoch + 1}/{epochs} at batch {first + 1}/{len(batches)}", flush=True)
        for done, batch in enumerate(batches[first:], start=first + 1):
            loss = _step(stage, state, batch, loop.precision)
            step += 1
            state.losses.append({"epoch": epoch, "step": step, "loss": loss, "pid": os.getpid(), "time": time.time()})
            if rank == 0:
                recent = np.mean([x["loss"] for x in state.losses[-10:]])
                if loop.progress is not None:
                    loop.progress.update.remote(step, epoch=f"{epoch + 1}/{epochs}", loss=f"{recent:.4f}")
                if step % loop.log_every == 0 or step == total:
                    print(f"{loop.name}: epoch {epoch + 1}/{epochs} step {step}/{total} loss {recent:.4f}", flush=True)
            if loop.checkpoint_every and step % loop.checkpoint_every == 0 and done < len(batches):
                _checkpoint(stage, state, epoch, done, step, rank)
        _checkpoint(stage, state, epoch, len(batches), step, rank)


def fit(
    stage: Stage,
    rows: list[dict[str, Any]],
    num_workers: int,
    use_gpu: bool,
    cpus_per_worker: int | None,
    max_failures: int,
    storage_uri: str,
    name: str,
    seed: int = 0,
    checkpoint_every: Optional[int] = None,
    precision: Precision = "fp32",
) -> Any:
    """Train ``stage`` on ``num_workers`` Ray Train workers over ``rows``; return the final checkpoint.

    Checkpoints go to ``storage_uri`` (a local path or ``s3://``) through the same filesystem as
    every other artifact, so an S3-compatible endpoint reaches the workers too. Rerunning with the
    same ``storage_uri`` and ``name`` after the driver died resumes from the latest checkpoint.
    """
    import ray
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if not rows:
        raise DataError(f"{name}: no training rows")
    if len(rows) < num_workers:
        console.say(f"{name}: {len(rows)} training rows cannot feed {num_workers} workers; training on {len(rows)}")
        num_workers = len(rows)
    per_worker = len(rows) // num_workers  # as many rows on every worker: DDP steps together
    if cpus_per_worker is None:
        cpus_per_worker = max(1, int(ray.cluster_resources().get("CPU", 1)) // num_workers)
    steps_per_epoch = math.ceil(per_worker / stage.settings.batch_questions)
    progress = console.RemoteBar(steps_per_epoch * stage.settings.epochs, f"{name.rsplit('-', 1)[0]} training", "step")
    loop = LoopSettings(name, seed, cpus_per_worker, steps_per_epoch, per_worker, checkpoint_every, progress=progress.handle,
                        precision=precision)
    trainer = TorchTrainer(
        epoch_loop,
        train_loop_config={"stage": stage, "loop": loop},
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus_per_worker}),
        dataset_config=DataConfig(datasets_to_split=[]),  # each worker takes its rows itself (_shard)
        run_config=RunConfig(
            name=name,
            storage_path=storage.filesystem(storage_uri)[1],
            storage_filesystem=storage.filesystem(storage_uri)[0],
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            failure_config=FailureConfig(max_failures=max_failures),
        ),
        datasets={"train": _rows_dataset(rows)},
    )
    with progress:
        return trainer.fit().checkpoint


def _rows_dataset(rows: list[dict[str, Any]]) -> Any:
    """The training rows as a dataset whose own progress bars are off. A dataset keeps the
    DataContext of the process that made it, here the driver's, and each worker reads it whole
    under that context: where the driver's bars are on (a script calling ``run_pipeline``, not a
    job), every worker redrew the finished read's bar into the log once a second for the whole
    training, beside the loop's own bar."""
    import ray.data

    ds = ray.data.from_items([{**r, "_row": i} for i, r in enumerate(rows)])
    ds.context.enable_progress_bars = False
    return ds


def checkpoint_root(cfg: Config, stage_name: str) -> str:
    """Where Ray Train keeps the stage's checkpoints: under the run directory, local or s3://."""
    return storage.join(cfg.run_dir, stage_name, "checkpoints")


def use_gpu(cfg: Config) -> bool:
    return cluster_has_gpu() if cfg.train.use_gpu == "auto" else bool(cfg.train.use_gpu)


# Given the trained model's local directory and a scratch folder: the directory of the model to
# keep (perhaps a new one) and what to add to the stage's manifest about that choice.
Finish = Callable[[str, str], tuple[str, dict[str, Any]]]


def train_stage(
    cfg: Config, stage_name: str, stage: Stage, rows: list[dict[str, Any]], inputs: dict[str, Any],
    finish: Optional[Finish] = None, out_dir: Optional[str] = None, **details: Any,
) -> str:
    """Fit ``stage`` on Ray Train with the run's scaling and fault settings, then copy the final
    model (or the one ``finish`` derives from it) and the loss curve into ``out_dir`` (default
    ``RUN/<stage_name>/``) under a new name the manifest then switches to (``put_model``, ``switch_model``), so
    a kill at any point leaves the stage unfinished rather than half-chosen; return the model's URI."""
    init_ray(cfg.ray)
    t = cfg.train
    training = f"{stage_name}-{storage.content_hash(inputs)[:12]}"
    checkpoint = fit(
        stage, rows, t.num_workers, use_gpu(cfg), t.cpus_per_worker, t.max_failures,
        checkpoint_root(cfg, stage_name), training, cfg.seed, t.checkpoint_every_steps, t.precision,
    )
    out_dir = out_dir or storage.join(cfg.run_dir, stage_name)
    with tempfile.TemporaryDirectory() as scratch:
        local = checkpoint.to_directory(scratch)
        trained = model_dir = f"{local}/{MODEL_DIR}"
        if finish is not None:
            model_dir, chosen = finish(trained, tempfile.mkdtemp(dir=scratch))
            details.update(chosen)
        end_point = put_model(trained, out_dir, inputs, kind=TRAINED_DIR) if model_dir != trained else None
        losses = Path(local, LOSSES_FILE).read_bytes()
        model = switch_model(out_dir, inputs, put_model(model_dir, out_dir, inputs), {LOSSES_FILE: losses}, end_point, **details)
    if not t.keep_checkpoints:  # they exist to resume this training, which the manifest now says is done
        root = checkpoint_root(cfg, stage_name)
        storage.delete_dir(storage.join(root, training))
        if not storage.list_dirs(root) and not storage.list_files(root):  # no other training's to resume
            storage.delete_dir(root)
    curve = [json.loads(line) for line in losses.decode().splitlines() if line]
    tracking.log_losses(cfg, out_dir[len(cfg.run_dir):].strip("/") or stage_name, curve)
    return model
