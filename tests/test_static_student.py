"""The static-embedding student, built from the packaged MiniLM's token embeddings."""

import numpy as np

from components import encoders
from components.config import EncoderConfig
from components.run_models import dense_name


def test_static_student_is_built_once_from_the_base_token_embeddings_and_loads_as_an_encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("IDISTILL_CACHE", str(tmp_path))
    cfg = EncoderConfig(model="static:sentence-transformers/all-MiniLM-L6-v2", max_seq_length=32)
    path = encoders.resolve_model(cfg.model)
    assert path.startswith(str(tmp_path)) and encoders.resolve_model(cfg.model) == path  # cached
    model = encoders.load_encoder(cfg)
    base = encoders.load_encoder(EncoderConfig())
    vocab = base[0].auto_model.get_input_embeddings().weight
    assert model.get_embedding_dimension() == vocab.shape[1] == 384
    q = encoders.encode(model, ["cholesterol and breast cancer", "asthma diet"], cfg)
    assert q.shape == (2, 384) and np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    p = encoders.encode(model, ["Cholesterol feeds breast cancer cells.", "Diet treats asthma."], cfg)
    assert np.argmax(q @ p.T, axis=1).tolist() == [0, 1]  # a bag-of-words retriever, but a retriever


def test_the_base_retriever_is_named_for_its_encoder_static_or_not():
    assert dense_name("sentence-transformers/all-MiniLM-L6-v2") == "base-minilm"
    assert dense_name("static:sentence-transformers/all-MiniLM-L6-v2") == "base-static-minilm"
    assert dense_name("/models/my-encoder/") == "base-my-encoder"
