"""The hybrid student: the packaged MiniLM with a static-embedding branch beside it."""

import json

import numpy as np
import pytest
import torch

from components import encoders
from components.config import EncoderConfig, load_config
from components.hybrid_student import StaticBranch, only_ours
from components.run_models import dense_name
from components.training import RetrieverStage
from components.weight_averaging import interpolate

SPEC = "hybrid:sentence-transformers/all-MiniLM-L6-v2"
TEXTS = ["Cholesterol feeds breast cancer cells.", "Diet treats asthma.", "what is known about statins and the heart"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("idistill-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IDISTILL_CACHE", str(path))
        yield path


def test_it_scores_as_minilm_plus_the_static_student_and_is_built_once(cache):
    cfg = EncoderConfig(model=SPEC, max_seq_length=64)
    path = encoders.resolve_model(SPEC)
    assert path.startswith(str(cache)) and encoders.resolve_model(SPEC) == path  # cached
    hybrid = encoders.load_encoder(cfg)
    base = encoders.load_encoder(EncoderConfig(max_seq_length=64))
    static = encoders.load_encoder(EncoderConfig(model="static:sentence-transformers/all-MiniLM-L6-v2"))
    h, b, s = (encoders.encode(m, TEXTS, cfg) for m in (hybrid, base, static))
    assert h.shape == (3, 768) and np.allclose(np.linalg.norm(h, axis=1), 1.0, atol=1e-5)
    # every text's concatenation has the same norm, so normalising it changes no ranking:
    # inner product = (cos_base + cos_static) / 2
    assert np.allclose(h @ h.T, (b @ b.T + s @ s.T) / 2, atol=1e-5)


def test_stage2_trains_the_static_branch_only(cache):
    cfg = load_config(None, [f"encoder.model={SPEC}"])
    stage = RetrieverStage.from_config(cfg)
    model = stage.build()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"3.embedding.weight"}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    passages = encoders.encode(encoders.load_encoder(cfg.encoder), TEXTS, cfg.encoder)
    batch = {"question": np.array(["cholesterol and cancer", "asthma"]), "passage_emb": [passages, passages],
             "ranker_scores": [np.array([3.0, 0.0, 1.0], np.float32), np.array([0.0, 3.0, 1.0], np.float32)],
             "mask": [np.ones(3, bool), np.ones(3, bool)]}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    stage.loss(model, batch).backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"3.embedding.weight"}
    interpolate(encoders.load_encoder(cfg.encoder).state_dict(), model.state_dict(), 0.5)  # the dev's weight averages apply


def test_a_saved_hybrid_reloads_the_same_and_only_its_own_code_is_trusted(cache, tmp_path):
    cfg = EncoderConfig(model=SPEC, max_seq_length=64)
    model = encoders.load_encoder(cfg)
    with torch.no_grad():
        next(m for m in model.modules() if isinstance(m, StaticBranch)).embedding.weight.mul_(2.0).add_(0.01)
    model.save(str(tmp_path / "saved"))
    assert only_ours(str(tmp_path / "saved"))
    again = encoders.load_encoder(cfg.model_copy(update={"model": str(tmp_path / "saved")}))
    assert np.allclose(encoders.encode(again, TEXTS, cfg), encoders.encode(model, TEXTS, cfg), atol=1e-6)
    assert not only_ours(encoders.resolve_model("sentence-transformers/all-MiniLM-L6-v2"))  # nothing foreign to trust
    modules = json.loads((tmp_path / "saved" / "modules.json").read_text())
    modules.append({"idx": 4, "name": "4", "path": "4_Other", "type": "somewhere.else.Module"})
    (tmp_path / "saved" / "modules.json").write_text(json.dumps(modules))
    assert not only_ours(str(tmp_path / "saved"))  # any other foreign class: not trusted


def test_the_base_retriever_is_named_hybrid():
    assert dense_name(SPEC) == "base-hybrid-minilm"
