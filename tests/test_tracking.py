"""MLflow tracking into a real file store: one MLflow run per run directory and config, the
config as parameters, per-step losses, report metrics and artifacts; off with one setting."""

import mlflow

from components.config import load_config
from components.tracking import log_losses, log_report, tracking_uri

REPORT = {"retrievers": {
    "base-minilm": {"top_k_accuracy": {"1": 0.5}, "ndcg@10": 0.30},
    "distilled": {"top_k_accuracy": {"1": 0.6}, "ndcg@10": 0.32,
                  "vs_base": {"ndcg@10": {"delta": 0.02, "ci_low": 0.01, "ci_high": 0.03}}}}}


def _runs(cfg):
    mlflow.set_tracking_uri(tracking_uri(cfg))
    return mlflow.search_runs(experiment_names=["idistill"], output_format="list")


def test_every_job_of_a_run_logs_into_one_mlflow_run_and_new_settings_start_another(tmp_path):
    cfg = load_config(None, [f"run_dir={tmp_path}", "train.ranker.lr=0.0001"])
    log_losses(cfg, "ranker", [{"step": 1, "loss": 2.0, "time": 1.0}, {"step": 2, "loss": 1.5, "time": 2.0}])
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("# report\n")
    log_report(cfg, REPORT, str(tmp_path / "report"))
    [run] = _runs(cfg)
    assert run.data.params["train.ranker.lr"] == "0.0001" and run.data.params["run_dir"] == str(tmp_path)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "ranker/loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.5)]
    assert run.data.metrics["distilled/ndcg_at_10"] == 0.32 and run.data.metrics["distilled/delta ndcg_at_10 vs base"] == 0.02
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "report")] == ["report/report.md"]
    log_losses(load_config(None, [f"run_dir={tmp_path}", "train.ranker.lr=0.5"]), "ranker", [{"step": 1, "loss": 3.0, "time": 1.0}])
    assert len(_runs(cfg)) == 2


def test_tracking_off_logs_nothing(tmp_path):
    cfg = load_config(None, [f"run_dir={tmp_path}", "tracking.enabled=false"])
    log_losses(cfg, "ranker", [{"step": 1, "loss": 2.0, "time": 1.0}])
    assert tracking_uri(cfg) is None and not (tmp_path / "mlruns").exists()
    assert tracking_uri(load_config(None, ["run_dir=s3://bucket/run"])) is None  # a remote run needs tracking.uri
