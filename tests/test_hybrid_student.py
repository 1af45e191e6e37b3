"""The hybrid student: the packaged MiniLM with a static-embedding branch beside it."""

import json

import numpy as np
import pytest
import torch

from components import encoders
from components.config import EncoderConfig, load_config
from components.corpus import Corpus
from components.errors import ConfigError
from components.index import FaissIndex
from components.stages.index import index_corpus
from components.hybrid_student import BranchPassages, StaticBranch, branch_of, is_hybrid, only_ours
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


def test_branch_passages_pool_again_what_the_model_itself_would_encode(cache):
    """passages: branch keeps each passage's base part from the index and pools only the static
    part again: that must equal encoding the passage with the current model, before and after
    the branch's token vectors move."""
    cfg = EncoderConfig(model=SPEC, max_seq_length=64)
    model = encoders.load_encoder(cfg)
    frozen = torch.tensor(encoders.encode(model, TEXTS, cfg))
    side = BranchPassages(model, 64)
    assert torch.allclose(side.vectors(frozen, *side.tokens(TEXTS, "cpu")), frozen, atol=1e-5)
    with torch.no_grad():
        branch_of(model).embedding.weight.mul_(torch.rand_like(branch_of(model).embedding.weight) + 0.5)
    moved = torch.tensor(encoders.encode(model, TEXTS, cfg))
    assert not torch.allclose(moved, frozen, atol=1e-3)
    assert torch.allclose(side.vectors(frozen, *side.tokens(TEXTS, "cpu")), moved, atol=1e-5)
    with pytest.raises(ValueError, match="hybrid student"):
        BranchPassages(encoders.load_encoder(EncoderConfig(max_seq_length=64)), 64)
    assert is_hybrid(encoders.resolve_model(SPEC)) and not is_hybrid(encoders.resolve_model("sentence-transformers/all-MiniLM-L6-v2"))


def test_stage2_with_passages_branch_trains_the_passage_side_through_the_bank_too(cache):
    cfg = load_config(None, [f"encoder.model={SPEC}", "train.retriever.passages=branch"])
    passages = encoders.encode(encoders.load_encoder(cfg.encoder), TEXTS, cfg.encoder)
    stage = RetrieverStage(cfg.train.retriever, SPEC, 64, negatives=passages, negative_texts=TEXTS)
    model = stage.build()
    batch = {"question": np.array(["cholesterol and cancer"]), "passage_emb": [passages[:2]], "passages": [TEXTS[:2]],
             "ranker_scores": [np.array([3.0, 0.0], np.float32)], "mask": [np.ones(2, bool)],
             "negative_index": [np.array([0, 1], np.int64)]}
    stage.loss(model, batch).backward()
    grad = branch_of(model).embedding.weight.grad
    # a token found only in the bank's third passage (not in the question, not in the list) gets
    # a gradient: the negatives' static part is pooled with the current branch at every step
    only_in_bank = model.tokenizer("statins")["input_ids"][1]
    assert grad is not None and grad[only_in_bank].abs().sum() > 0


def test_an_index_pooled_again_over_the_frozen_base_index_is_what_the_model_encodes(cache, tmp_path):
    """passages: branch indexes each weight average by pooling the static half again over the
    base index (no transformer pass over the corpus): the vectors must be the model's own."""
    cfg = load_config(None, [f"encoder.model={SPEC}", "encoder.max_seq_length=64", "index.kind=flat"])
    corpus = Corpus(ids=["a", "b", "c"], titles=["", "", ""], texts=TEXTS)
    model = encoders.load_encoder(cfg.encoder)
    base = FaissIndex.build(encoders.encode(model, corpus.passages(), cfg.encoder), corpus.ids, cfg.index,
                            encoders.identity(model, cfg.encoder), corpus.content_hash())
    with torch.no_grad():
        branch_of(model).embedding.weight.mul_(torch.rand_like(branch_of(model).embedding.weight) + 0.5)
    model.save(str(tmp_path / "moved"))
    moved = cfg.encoder.model_copy(update={"model": str(tmp_path / "moved")})
    uri = index_corpus(cfg, corpus, moved, str(tmp_path / "index"), frozen_base=base)
    assert np.allclose(FaissIndex.load(uri).vectors(corpus.ids), encoders.encode(model, corpus.passages(), moved), atol=1e-5)


def test_a_branch_may_pool_more_of_a_passage_than_the_transformer_reads(cache, tmp_path):
    """encoder.branch_passage_tokens: the bag reads N tokens of each passage where the transformer
    reads max_seq_length; the untrained student Stage 2 starts from carries N, and so does what it
    saves, so its index pools as many, and a question is still encoded as before."""
    long = " ".join(["cholesterol statins heart"] * 6 + ["asthma"])  # "asthma": token 38, past the transformer's 16
    cfg = load_config(None, [f"encoder.model={SPEC}", "encoder.max_seq_length=16", "index.kind=flat",
                             "train.retriever.passages=branch", "encoder.branch_passage_tokens=64"])
    corpus = Corpus(ids=["a", "b"], titles=["", ""], texts=[long, TEXTS[1]])
    stage = RetrieverStage.from_config(cfg)
    model = stage.build()
    ids, keep = stage.branch.tokens([long], "cpu")
    asthma = model.tokenizer("asthma")["input_ids"][1]
    assert keep.sum() > 16 and asthma in ids[keep].tolist()
    question = encoders.encode(model, ["asthma"], cfg.encoder)
    stage.save(model, str(tmp_path / "saved"))
    saved = cfg.encoder.model_copy(update={"model": str(tmp_path / "saved"), "branch_passage_tokens": None})
    assert branch_of(encoders.load_encoder(saved)).passage_tokens == 64
    # the untrained student is the base encoder: the same weights, bag and fingerprint
    assert encoders.fingerprint(encoders.load_encoder(saved)) == encoders.fingerprint(encoders.load_encoder(cfg.encoder))
    assert np.allclose(encoders.encode(model, ["asthma"], cfg.encoder), question)  # the cut is put back
    plain = cfg.encoder.model_copy(update={"branch_passage_tokens": None})
    base = FaissIndex.build(encoders.encode(model, corpus.passages(), cfg.encoder), corpus.ids, cfg.index,
                            encoders.identity(encoders.load_encoder(plain), plain), corpus.content_hash())
    index = FaissIndex.load(index_corpus(cfg, corpus, saved, str(tmp_path / "index"), frozen_base=base))
    encoders.set_max_seq_length(model, 64)
    read_64 = encoders.encode(model, corpus.passages(), cfg.encoder)
    got, d = index.vectors(corpus.ids), 384
    assert np.allclose(got[:, :d], base.vectors(corpus.ids)[:, :d])  # the transformer's half: the base index's
    assert np.allclose(got[:, d:], read_64[:, d:], atol=1e-5)  # the bag's half: 64 tokens of each passage
    assert not np.allclose(got[0, d:], base.vectors(["a"])[0, d:], atol=1e-3)
    # the same weights pooling at the transformer's cut are another encoder: that index is rebuilt, not reused
    branch_of(model).passage_tokens = None
    encoders.set_max_seq_length(model, 16)
    model.save(str(tmp_path / "cut"))
    cut = plain.model_copy(update={"model": str(tmp_path / "cut")})
    assert encoders.fingerprint(encoders.load_encoder(cut)) != encoders.fingerprint(encoders.load_encoder(saved))
    again = FaissIndex.load(index_corpus(cfg, corpus, cut, str(tmp_path / "index"), frozen_base=base))
    assert np.allclose(again.vectors(corpus.ids), base.vectors(corpus.ids), atol=1e-5)


@pytest.mark.slow
def test_the_base_index_pools_as_the_untrained_student_does(cache, ray_cluster, tmp_path):
    """With encoder.branch_passage_tokens, the base index (the corpus pass, then the bag pooled
    again) is the index of the model Stage 2 starts from, so its alpha 0 is the report's base row."""
    cfg = load_config(None, [f"encoder.model={SPEC}", "encoder.max_seq_length=16", "index.kind=flat",
                             "train.retriever.passages=branch", "encoder.branch_passage_tokens=64"])
    long = " ".join(["cholesterol statins heart"] * 6 + ["asthma"])
    corpus = Corpus(ids=["a", "b", "c"], titles=["", "", ""], texts=[long, *TEXTS[:2]])
    base = FaissIndex.load(index_corpus(cfg, corpus, cfg.encoder, str(tmp_path / "base")))
    stage = RetrieverStage.from_config(cfg)
    stage.save(stage.build(), str(tmp_path / "untrained"))
    untrained = cfg.encoder.model_copy(update={"model": str(tmp_path / "untrained")})
    alpha0 = FaissIndex.load(index_corpus(cfg, corpus, untrained, str(tmp_path / "alpha0"), frozen_base=base))
    assert alpha0.manifest["encoder"]["fingerprint"] == base.manifest["encoder"]["fingerprint"]
    assert np.allclose(alpha0.vectors(corpus.ids), base.vectors(corpus.ids), atol=1e-5)
    plain = cfg.encoder.model_copy(update={"branch_passage_tokens": None})
    cut = FaissIndex.load(index_corpus(cfg, corpus, plain, str(tmp_path / "cut")))
    assert not np.allclose(cut.vectors(["a"])[0, 384:], base.vectors(["a"])[0, 384:], atol=1e-3)  # 64 tokens, not 16


def test_branch_passage_tokens_needs_a_hybrid(cache):
    with pytest.raises(ConfigError, match="has no static branch"):
        encoders.load_encoder(EncoderConfig(max_seq_length=64, branch_passage_tokens=256))


