"""A hybrid student: the base bi-encoder with a static-embedding branch beside it.

Distilling into MiniLM itself moves it little (at most +0.006 nDCG@10 on NFCorpus, docs/results.md, runs 5
and 8): it was trained on a billion pairs, and a few thousand lists mostly wear it down. The
static student has the headroom (+0.04 and more from the same lists) but starts far below MiniLM.
The hybrid adds the one to the other instead of choosing::

    score(q, p) = cos_base(q, p) + w · cos_static(q, p)

where the static part is the mean of the base model's own input token embeddings over a text's
tokens (the static student, read from the base's own tokenization, so cut at its max_seq_length). Both parts are unit vectors, so the
concatenation ``[b; √w·s]`` has the same norm for every text: normalising it changes no ranking,
and its inner product is ``(cos_base + w·cos_static) / (1 + w)``. The index, the candidates,
Stage 2's frozen passage vectors, the evaluation and the endpoint therefore treat it as one
sentence-transformers model of dimension ``d_base + d_static``. Stage 2 freezes the transformer
(``freeze_base``) and trains only the branch: the query side of a bag of tokens learns which of
the corpus's words a question's words should reach, and MiniLM's score stays as it was beneath it.
With ``train.retriever.passages: branch`` the same token vectors learn for the passages too
(``BranchPassages``), so a passage's words can move towards the questions that should find it.

``encoder.model: hybrid:<base>`` builds it from ``<base>`` (``components.students``). The saved model
names this module's class, so loading it needs this package and ``trust_remote_code=True``
(``encoders.open_model`` passes it for models whose only foreign module is this one).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from sentence_transformers.base.modules import Module
from torch import nn

# w: scored at 1, the trained branch beat 0.5 and 2 on the probe's NFCorpus dev split (perfect
# simulated teacher; docs/results.md, run 18).
WEIGHT = 1.0
CLASS_REF = f"{__name__}.StaticBranch"


class StaticBranch(Module):
    """Appends the static part to the base model's ``sentence_embedding``: the mean of this
    module's token vectors over the text's tokens (padding and special tokens left out),
    L2-normalised and scaled by √weight.

    ``passage_tokens`` (None: the transformer's own cut) is how many of a passage's tokens the bag
    pools where idistill indexes passages with the branch alone (``BranchPassages``): a bag costs
    nothing per token, so it can read a whole abstract where the transformer reads its first 128
    tokens. A plain ``encode`` of a passage still cuts where the transformer does."""

    config_keys = ["vocab_size", "dim", "base_dim", "weight", "skip_ids", "passage_tokens"]

    def __init__(self, vocab_size: int, dim: int, base_dim: int, weight: float = WEIGHT,
                 skip_ids: list[int] | None = None, init: torch.Tensor | None = None,
                 passage_tokens: int | None = None) -> None:
        super().__init__()
        self.vocab_size, self.dim, self.base_dim, self.weight = vocab_size, dim, base_dim, float(weight)
        self.passage_tokens = passage_tokens
        self.skip_ids = sorted(set(skip_ids or []))
        self.embedding = nn.Embedding(vocab_size, dim)
        if init is not None:
            self.embedding.weight = nn.Parameter(init.detach().clone().float())
        self.register_buffer("_skip", torch.tensor(self.skip_ids, dtype=torch.long), persistent=False)

    def keep(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The tokens the bag averages: not padding, not a special token."""
        return attention_mask.bool() & ~torch.isin(input_ids, self._skip.to(input_ids.device))

    def pooled(self, input_ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """√weight · the normalised mean of the kept tokens' vectors (a text with none gets zeros).
        ``embedding_bag`` never materialises a (texts, tokens, dim) tensor, so a whole bank of
        corpus passages can be pooled again at every Stage 2 step (``passages: branch``)."""
        lengths = keep.sum(1)
        offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)[:-1]])
        bag = F.embedding_bag(input_ids[keep], self.embedding.weight, offsets, mode="mean")
        return math.sqrt(self.weight) * F.normalize(bag, dim=-1)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ids = features["input_ids"]
        base = F.normalize(features["sentence_embedding"], dim=-1)
        features["sentence_embedding"] = torch.cat([base, self.pooled(ids, self.keep(ids, features["attention_mask"]))], dim=-1)
        return features

    def get_embedding_dimension(self) -> int:
        return self.base_dim + self.dim

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> "StaticBranch":
        config = cls.load_config(model_name_or_path=model_name_or_path, subfolder=subfolder)
        module = cls(**config)
        cls.load_torch_weights(model_name_or_path=model_name_or_path, subfolder=subfolder, model=module)
        return module


def build(source: Any, out_dir: str) -> None:
    """Write to ``out_dir`` the modules of ``source`` (the loaded base model) followed by a
    ``StaticBranch`` initialised from its input token embeddings."""
    from sentence_transformers import SentenceTransformer

    weights = source[0].auto_model.get_input_embeddings().weight
    branch = StaticBranch(weights.shape[0], weights.shape[1], int(source.get_embedding_dimension()),
                          skip_ids=list(source.tokenizer.all_special_ids), init=weights)
    SentenceTransformer(modules=[*source, branch], device="cpu").save(out_dir)


def _module_types(model_dir: str) -> set[str]:
    """The module classes a saved model's modules.json names (none when it has no readable one)."""
    try:
        modules = json.loads((Path(model_dir) / "modules.json").read_text())
    except (OSError, ValueError):
        return set()
    return {m.get("type", "") for m in modules} - {""}


def only_ours(model_dir: str) -> bool:
    """Whether ``model_dir`` is a saved model whose only module outside sentence-transformers is
    ``StaticBranch``: the one case where loading it may import code it names."""
    return {t for t in _module_types(model_dir) if not t.startswith("sentence_transformers.")} == {CLASS_REF}


def freeze_base(model: Any) -> None:
    """Leave only the static branch trainable, where there is one; any other model is unchanged."""
    branch = branch_of(model)
    if branch is None:
        return
    for p in model.parameters():
        p.requires_grad_(False)
    for p in branch.parameters():
        p.requires_grad_(True)


def branch_of(model: Any) -> StaticBranch | None:
    """The model's static branch, if it is a hybrid student."""
    return next((m for m in model.modules() if isinstance(m, StaticBranch)), None)


def is_hybrid(model_dir: str) -> bool:
    """Whether the saved model in ``model_dir`` has a ``StaticBranch`` (read from its modules.json)."""
    return CLASS_REF in _module_types(model_dir)


class BranchPassages:
    """Passage vectors of a hybrid student whose branch learns on both sides (``passages: branch``).

    A passage's unit vector is ``[b; √w·s] / √(1+w)``. The base part ``b`` stays what the base
    index stored (the transformer is frozen), so only ``s``, the bag of the passage's tokens, is
    pooled again with the branch's current token vectors; no transformer runs over passages in
    the loop. Training the token vectors on both sides lets a word of the question and the same
    word in a passage move together, which the query side alone cannot (NFCorpus dev, perfect
    simulated teacher, ``scripts/hybrid_probe.py``: +0.026 against +0.014 over MiniLM; docs/results.md, run 19)."""

    def __init__(self, model: Any, max_seq_length: int) -> None:
        branch = branch_of(model)
        if branch is None:
            raise ValueError("passages: branch needs a hybrid student (encoder.model: hybrid:<base>)")
        self.model, self.branch, self.transformer_cut = model, branch, max_seq_length

    @property
    def max_seq_length(self) -> int:
        """Where a passage's bag is cut: the branch's ``passage_tokens``, else the transformer's cut."""
        return self.branch.passage_tokens or self.transformer_cut

    def tokens(self, texts: list[str], device: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and the kept-token mask of ``texts``, cut at the branch's ``passage_tokens``
        (else where the index's encoder cut them)."""
        from components.encoders import set_max_seq_length

        cut = self.model.max_seq_length  # read by tokenize; put back so the model encodes as it did
        set_max_seq_length(self.model, self.max_seq_length)
        try:
            features = self.model.tokenize(texts)
        finally:
            set_max_seq_length(self.model, cut)
        ids, mask = features["input_ids"].to(device), features["attention_mask"].to(device)
        return ids, self.branch.keep(ids, mask)

    def vectors(self, frozen: torch.Tensor, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``frozen`` (..., d_base + d_static) index vectors with their static part pooled again."""
        base_dim, scale = self.branch.base_dim, math.sqrt(1.0 + self.branch.weight)
        static = self.branch.pooled(ids, keep).view(*frozen.shape[:-1], -1) / scale
        return torch.cat([frozen[..., :base_dim], static.to(frozen.dtype)], dim=-1)
