"""Corpus encoding batched by token count: the same vectors as plain ``encode``, less padding."""

import numpy as np

from components import encoders
from components.config import EncoderConfig
from components.corpus import load_corpus


def test_encode_corpus_returns_plain_encode_rows_in_input_order(minilm):
    texts = load_corpus("demo").passages()[:40] + ["word " * 400]  # one past max_seq_length
    cfg = EncoderConfig(batch_size=8, max_seq_length=64)
    encoders.set_max_seq_length(minilm, cfg.max_seq_length)
    try:
        seen: list[int] = []
        vectors = encoders.encode_corpus(minilm, texts, cfg, progress=seen.append)
        plain = encoders.encode(minilm, texts, cfg)
    finally:
        encoders.set_max_seq_length(minilm, EncoderConfig().max_seq_length)
    np.testing.assert_allclose(vectors, plain, atol=1e-5)
    assert sum(seen) == len(texts) and max(seen) == cfg.batch_size
    assert encoders.encode_corpus(minilm, [], cfg).shape == (0, minilm.get_embedding_dimension())


def test_encode_corpus_batches_are_cut_by_token_count_longest_first(minilm, monkeypatch):
    texts = load_corpus("demo").passages()[:60]
    counts = dict(zip(texts, encoders.token_counts(minilm, texts)))
    batches: list[list[int]] = []
    real = encoders.encode

    def recording(model, batch, cfg, show_progress=False):
        batches.append([counts[t] for t in batch])
        return real(model, batch, cfg, show_progress)

    monkeypatch.setattr(encoders, "encode", recording)
    encoders.encode_corpus(minilm, texts, EncoderConfig(batch_size=16))
    assert [len(b) for b in batches] == [16, 16, 16, 12]
    assert all(min(a) >= max(b) for a, b in zip(batches, batches[1:]))  # no batch pads past its neighbours


def test_token_counts_fall_back_to_characters_for_a_static_model(tmp_path, monkeypatch):
    monkeypatch.setenv("IDISTILL_CACHE", str(tmp_path))
    cfg = EncoderConfig(model="static:sentence-transformers/all-MiniLM-L6-v2")
    model = encoders.load_encoder(cfg)
    assert encoders.token_counts(model, ["ab", "abcd"]) == [2, 4]
    vectors = encoders.encode_corpus(model, ["asthma diet", "cholesterol"], cfg)
    np.testing.assert_allclose(vectors, encoders.encode(model, ["asthma diet", "cholesterol"], cfg), atol=1e-6)
