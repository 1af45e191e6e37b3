import pytest

from components.config import Config, load_config, parse_override
from components.errors import ConfigError


def test_defaults_are_the_embedded_local_run():
    cfg = load_config()
    assert cfg.data.path == "demo"
    assert cfg.index.kind == "auto"
    assert cfg.eval.ks == [1, 5, 10, 20, 50, 100]


def test_yaml_then_overrides_with_yaml_typing(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("run_dir: /tmp/x\nencoder:\n  batch_size: 8\nindex:\n  kind: hnsw\n")
    cfg = load_config(f, ["encoder.batch_size=16", "eval.ks=[20, 1, 5, 5]", "bm25.stemmer=english"])
    assert cfg.run_dir == "/tmp/x"
    assert cfg.encoder.batch_size == 16
    assert cfg.index.kind == "hnsw"
    assert cfg.eval.ks == [1, 5, 20]
    assert cfg.bm25.stemmer == "english"


def test_unknown_key_is_named(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("encoder:\n  batch_sise: 8\n")
    with pytest.raises(ConfigError, match=r"encoder\.batch_sise: unknown key"):
        load_config(f)


def test_unknown_section_from_override():
    with pytest.raises(ConfigError, match=r"encodr: unknown key"):
        load_config(None, ["encodr.model=x"])


@pytest.mark.parametrize(
    "override, field",
    [
        ("encoder.batch_size=0", "encoder.batch_size"),
        ("index.kind=annoy", "index.kind"),
        ("eval.ks=[0, 5]", "eval.ks"),
        ("ray.num_cpus=two", "ray.num_cpus"),
    ],
)
def test_bad_values_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(None, [override])


def test_malformed_override_and_files(tmp_path):
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("no-equals-sign")
    with pytest.raises(ConfigError, match="not a section"):
        load_config(None, ["seed=1", "seed.x=1"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


def test_shipped_configs_load():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert configs, "configs/ should ship at least the local default"
    for path in configs:
        assert isinstance(load_config(path), Config)


def test_a_loss_with_corpus_negatives_is_refused_with_a_trained_passage_side():
    with pytest.raises(ConfigError, match=r"train\.retriever.*needs frozen passage vectors"):
        load_config(None, ["train.retriever.loss=kl_negatives", "train.retriever.passages=trained"])
    assert load_config(None, ["train.retriever.loss=kl_negatives"]).train.retriever.loss == "kl_negatives"
    with pytest.raises(ConfigError, match=r"labelled_targets: teacher needs passages: frozen"):
        load_config(None, ["train.retriever.loss=kl", "train.retriever.passages=trained", "train.retriever.labelled_targets=teacher"])


def test_corpus_questions_are_refused_when_every_training_question_is_generated():
    with pytest.raises(ConfigError, match=r"corpus_questions.*generated already"):
        load_config(None, ["train.retriever.corpus_questions=true", "data.questions=generated"])
    assert load_config(None, ["train.retriever.corpus_questions=true"]).train.retriever.corpus_questions


def test_a_moved_key_is_named_in_what_a_user_writes_and_carried_over_in_what_a_run_recorded():
    with pytest.raises(ConfigError, match="train.retriever.branch_passage_tokens: moved to encoder.branch_passage_tokens"):
        load_config(None, ["train.retriever.branch_passage_tokens=512"])
    recorded = Config().model_dump(mode="json")
    recorded["train"]["retriever"]["branch_passage_tokens"] = None  # every run before the move recorded the field
    assert load_config(base=recorded) == Config()
    recorded["train"]["retriever"]["branch_passage_tokens"] = 512
    assert load_config(base=recorded).encoder.branch_passage_tokens == 512
    assert "branch_passage_tokens" in recorded["train"]["retriever"]  # the caller's dict is left as it was
