"""The Stage 1 ranker: a cross-encoder that scores (question, passage) pairs jointly.

Built from any encoder backbone (default: the packaged MiniLM) with a one-logit head, and saved as
a plain Hugging Face sequence-classification directory, which ``sentence_transformers.CrossEncoder``
loads as it is. A *residual* ranker (``train.ranker.prior_temperature``) scores a pair as the
first-stage retriever's cosine over that temperature plus the cross-encoder's logit; its head
starts at zero, so before training it ranks exactly as the first stage does. Its saved model is
the correction alone: add the prior (``with_prior``) wherever it scores. Scoring large candidate sets runs as a Ray Data actor pool, like embedding.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from components import console, encoders
from components.precision import Precision, autocast
from components.row_collect import collect_rows


def load_ranker(path: str, device: str = "auto") -> tuple[Any, Any]:
    """(model, tokenizer) for a backbone or a trained ranker directory, in eval mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = encoders.resolve_model(path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a fresh backbone's "newly initialized head" notice is expected
    try:
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    finally:
        hf_logging.set_verbosity(verbosity)
    tokenizer = AutoTokenizer.from_pretrained(source)
    return model.to(encoders.resolve_device(device)).eval(), tokenizer


def zero_head(model: Any) -> Any:
    """Zero the classification head (weights and bias), so the model's logit starts at 0 for every
    pair: a residual ranker starts as its prior."""
    import torch

    head = model.get_submodule("classifier") if hasattr(model, "classifier") else model.score
    layers = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        layers[-1].weight.zero_()
        if layers[-1].bias is not None:
            layers[-1].bias.zero_()
    return model


def with_prior(logits: np.ndarray, prior: Sequence[float], temperature: Optional[float]) -> np.ndarray:
    """A residual ranker's score: the cross-encoder's logit plus the first-stage cosine over the
    prior temperature (the logit alone when there is no temperature)."""
    if temperature is None:
        return logits
    return (np.asarray(logits, np.float32) + np.asarray(prior, np.float32) / temperature).astype(np.float32)


def padded_passes(
    tokenizer: Any, questions: Sequence[str], passages: Sequence[str], max_length: int, chunk: int
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """The pairs' features in passes of ``chunk``, shortest first, each padded to its own longest;
    and the order: pass position i holds pair ``order[i]``.

    Padding every pair of a Stage 1 step (4 lists of 20 passages) to the step's longest spends
    much of the step on pad tokens when the pairs' lengths vary, and on CPUs one large pass is
    slower than several small ones: sorted passes of 16 made Stage 1 steps 15% faster on 2 cores
    (README, "Performance and scale")."""
    features = tokenizer(list(questions), list(passages), truncation="only_second", max_length=max_length)
    order = np.argsort([len(ids) for ids in features["input_ids"]], kind="stable")
    passes = [
        tokenizer.pad({k: [v[i] for i in order[start : start + chunk]] for k, v in features.items()}, return_tensors="pt")
        for start in range(0, len(order), chunk)
    ]
    return passes, order


def pair_logits(
    model: Any, tokenizer: Any, questions: Sequence[str], passages: Sequence[str], max_length: int, chunk: int
) -> Any:
    """One logit per (question, passage) pair, in the pairs' order, from ``chunk`` pairs a forward
    pass (``padded_passes``); gradients flow (used in training and scoring; under DDP the passes'
    gradients are reduced once, at the backward)."""
    import torch

    if not len(questions):
        return torch.zeros(0)
    passes, order = padded_passes(tokenizer, questions, passages, max_length, chunk)
    device = next(model.parameters()).device
    logits = torch.cat([model(**{k: v.to(device) for k, v in p.items()}).logits.reshape(-1) for p in passes])
    back = torch.empty(len(order), dtype=torch.long, device=device)
    back[torch.as_tensor(order, device=device)] = torch.arange(len(order), device=device)
    return logits[back]


def score_pairs(
    model: Any, tokenizer: Any, questions: Sequence[str], passages: Sequence[str], max_length: int, batch_size: int,
    precision: Precision = "fp32",
) -> np.ndarray:
    import torch

    with torch.inference_mode(), autocast(precision, next(model.parameters()).device):
        return pair_logits(model, tokenizer, questions, passages, max_length, batch_size).float().cpu().numpy()


class _ScoreActor:
    def __init__(self, uri: str, max_length: int, batch_size: int, precision: Precision) -> None:
        import tempfile

        from components import storage

        # Each actor fetches the model itself: on a cluster it may run on a node other than the driver's.
        self.scratch = tempfile.TemporaryDirectory(prefix="idistill-ranker-")
        self.model, self.tokenizer = load_ranker(storage.local_dir(uri, self.scratch.name))
        self.max_length, self.batch_size, self.precision = max_length, batch_size, precision

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        scores = score_pairs(
            self.model, self.tokenizer, [str(q) for q in batch["question"]], [str(p) for p in batch["passage"]],
            self.max_length, self.batch_size, self.precision,
        )
        return {"row": batch["row"], "score": scores}


_CALLS_PER_BLOCK = 4  # actor calls (of ``batch_size`` x 4 pairs) per Ray Data block


def score_blocks(pairs: int, batch_size: int, actors: int) -> int:
    """Blocks to split ``pairs`` into. A block's scores come back only when all of it is scored, so
    the progress bar moves a block at a time: a few actor calls per block (1,024 pairs at the
    defaults, about a minute at 128 tokens on 2 CPU cores) keeps it moving, where ``actors`` x 4
    blocks of 6,475 pairs left a 51,800-pair Stage 2 at 0% for five minutes. At least ``actors`` x 4,
    so a small job still spreads over every actor."""
    per_block = batch_size * 4 * _CALLS_PER_BLOCK
    return max(1, min(pairs, max(actors * 4, -(-pairs // per_block))))


def score_with_ray(
    questions: Sequence[str], passages: Sequence[str], uri: str, max_length: int, batch_size: int, actors: int, use_gpu: bool,
    precision: Precision = "fp32",
) -> np.ndarray:
    """Ranker scores for many pairs through a Ray Data actor pool; element i scores pair i. The
    model is read from ``uri`` (a ranker directory, local or s3://) by each actor."""
    import ray

    rows = [{"row": i, "question": q, "passage": p} for i, (q, p) in enumerate(zip(questions, passages))]
    ds = ray.data.from_items(rows, override_num_blocks=score_blocks(len(rows), batch_size, actors))
    scored = ds.map_batches(
        _ScoreActor,
        fn_constructor_kwargs={"uri": uri, "max_length": max_length, "batch_size": batch_size, "precision": precision},
        batch_size=batch_size * 4,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        num_cpus=1,
        num_gpus=1 if use_gpu else 0,
    )
    with console.bar(len(rows), "ranker scores", "pair") as progress:
        return collect_rows(scored.iter_batches(batch_size=batch_size * 4, batch_format="numpy"), len(rows), "score",
                            "ranker scoring", progress=progress.update)


class RerankRetriever:
    """A first-stage retriever's top ``depth`` re-ordered by the ranker; deeper ranks keep their order."""

    def __init__(
        self, name: str, first: Any, passage_of: Callable[[str], str], model: Any, tokenizer: Any,
        depth: int, max_length: int, batch_size: int, prior_temperature: Optional[float] = None,
        precision: Precision = "fp32",
    ) -> None:
        self.name, self.first, self.passage_of, self.model, self.tokenizer = name, first, passage_of, model, tokenizer
        self.depth, self.max_length, self.batch_size = depth, max_length, batch_size
        self.prior_temperature, self.precision = prior_temperature, precision

    def search(self, questions: Sequence[str], k: int) -> Any:
        return self.rerank(questions, self.first.search(questions, max(k, self.depth)), k)

    def rerank(self, questions: Sequence[str], hits: Any, k: int) -> Any:
        """Re-order the top ``depth`` of first-stage ``hits`` (fetched at least ``depth`` deep)."""
        from components.retrieval import Hits

        qs = [q for q, ids in zip(questions, hits.ids) for _ in ids[: self.depth]]
        passages = [self.passage_of(d) for ids in hits.ids for d in ids[: self.depth]]
        scores = score_pairs(self.model, self.tokenizer, qs, passages, self.max_length, self.batch_size, self.precision)
        prior = [s for row in hits.scores for s in row[: self.depth]]
        scores = with_prior(scores, prior, self.prior_temperature)
        out_ids, out_scores, at = [], [], 0
        for ids in hits.ids:
            head = ids[: self.depth]
            s = scores[at : at + len(head)]
            at += len(head)
            order = np.argsort(-s, kind="stable")
            out_ids.append(([head[i] for i in order] + ids[self.depth :])[:k])
            # deeper ranks sit below every re-ranked one
            tail = [float(s.min()) - 1 - r for r in range(len(ids) - len(head))] if len(head) else []
            out_scores.append(([float(s[i]) for i in order] + tail)[:k])
        return Hits(out_ids, out_scores)
