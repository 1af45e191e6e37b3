"""bf16 autocast (``train.precision``): the ranker's scores and both stages' losses stay fp32 and
close to fp32's, and a training step keeps fp32 weights. CPU autocast, so it runs here."""

import numpy as np
import pytest
import torch

from components.config import DEFAULT_MODEL, load_config
from components.ranker import load_ranker, score_pairs
from components.training import RankerStage, RetrieverStage, _step, _Training

QUESTIONS = ["diet and asthma", "arsenic in rice", "does cholesterol feed breast cancer cells"]
PASSAGES = [
    "Asthma and eczema respond to diet, a trial of four hundred children found over two winters.",
    "Arsenic in rice and rice products: levels found in a market basket survey.",
    "Cholesterol feeds breast cancer cells in culture.",
    "Statin use and the risk of cancer recurrence.",
    "Dietary fibre and the gut microbiome of adults.",
    "Inorganic arsenic exposure from drinking water.",
]


def test_bf16_scores_are_fp32_and_order_each_list_as_fp32_does():
    torch.manual_seed(0)
    model, tokenizer = load_ranker(DEFAULT_MODEL, device="cpu")
    qs, ps = [q for q in QUESTIONS for _ in PASSAGES], [p for _ in QUESTIONS for p in PASSAGES]
    full = score_pairs(model, tokenizer, qs, ps, 64, 8).reshape(len(QUESTIONS), -1)
    half = score_pairs(model, tokenizer, qs, ps, 64, 8, "bf16").reshape(len(QUESTIONS), -1)
    assert full.dtype == half.dtype == np.float32
    assert not np.array_equal(full, half)  # bf16 did run
    spread = full.max(1, keepdims=True) - full.min(1, keepdims=True)
    assert np.abs(full - half).max() < 0.1 * spread.min()
    assert (full.argmax(1) == half.argmax(1)).all()


def _ranker_step(precision: str) -> tuple[float, RankerStage, _Training]:
    torch.manual_seed(0)
    cfg = load_config(None, ["train.ranker.max_seq_length=64", "train.ranker.pairs_per_forward=4"])
    stage = RankerStage(cfg.train.ranker)
    model = stage.build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    state = _Training(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0), [])
    batch = {"question": np.array(QUESTIONS[:2], dtype=object),
             "passages": np.array([PASSAGES[:4], PASSAGES[2:]], dtype=object)}
    return _step(stage, state, batch, precision), stage, state


def test_a_bf16_ranker_step_keeps_fp32_weights_and_a_loss_near_fp32s():
    full, _, _ = _ranker_step("fp32")
    half, _, state = _ranker_step("bf16")
    assert np.isfinite(half) and abs(half - full) < 0.02 * abs(full)
    assert all(p.dtype == torch.float32 for p in state.model.parameters())
    assert all(s["exp_avg"].dtype == torch.float32 for s in state.optimizer.state.values())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_stage2_scores_its_lists_in_fp32_under_either_precision(precision):
    """The query encoder may run in bf16; its cosines over tau_retriever and the KL do not."""
    from components.precision import autocast

    cfg = load_config(None, ["train.retriever.max_seq_length=32", "train.retriever.loss=kl"])
    stage = RetrieverStage.from_config(cfg)
    model = stage.build().eval()  # no dropout: the two passes see the same network
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(2, 4, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=-1, keepdims=True)
    batch = {"question": np.array(QUESTIONS[:2], dtype=object), "passage_emb": list(emb),
             "ranker_scores": [np.array([2.0, 1.0, 0.0, -1.0], np.float32)] * 2, "mask": [np.ones(4, bool)] * 2}
    with autocast(precision, "cpu"):
        loss = stage.loss(model, batch)
    with torch.no_grad():
        reference = stage.loss(model, batch)
    assert loss.dtype == torch.float32
    difference = abs(float(loss.detach()) - float(reference))
    if precision == "fp32":
        assert difference < 1e-6
    else:  # the encoder did run in bf16, and the loss stays near fp32's
        assert 0 < difference < 0.05 * float(reference)


def test_ranker_scores_cached_at_one_precision_are_not_reused_at_the_other(tmp_path):
    """Stage 2 learns from the cached scores, so a bf16 cache must not feed an fp32 rerun (nor the
    reverse); a cache that names no precision was written at fp32 and stays valid for it."""
    import pyarrow as pa

    from components import storage
    from components.distill.rescore import list_key, stored_scores

    storage.write_json(str(tmp_path / "ranker" / "manifest.json"), {"inputs": {"train": {}}})
    ranker = storage.content_hash({"train": {}})
    question, candidates, cache = QUESTIONS[0], ["d1", "d2"], str(tmp_path / "scores.parquet")

    def cached(metadata: dict[str, str], precision: str) -> list:
        table = pa.table({"key": [list_key(question, candidates, None)], "scores": [[1.0, 0.5]]})
        storage.write_parquet(cache, table.replace_schema_metadata({"ranker": ranker, **metadata}))
        cfg = load_config(None, [f"run_dir={tmp_path}", f"train.precision={precision}"])
        return stored_scores(cfg, [question], [candidates], [[0.0, 0.0]], cache)

    assert cached({"precision": "bf16"}, "fp32") == [None]
    assert cached({"precision": "fp32"}, "bf16") == [None]
    assert cached({"precision": "bf16"}, "bf16")[0].tolist() == [1.0, 0.5]
    assert cached({}, "fp32")[0].tolist() == [1.0, 0.5]
    assert cached({}, "bf16") == [None]
