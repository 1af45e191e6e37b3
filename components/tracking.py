"""Experiment tracking with MLflow, so runs can be compared in the MLflow UI.

One MLflow run per run directory *and* config (tagged with both), so every job of one pipeline
run (``ray job submit`` runs them as separate processes) logs into the same MLflow run, and a
rerun with other settings starts a new one instead of overwriting parameters. Logged: the config
as parameters (dotted keys, credentials masked), each training stage's per-step loss
(``<stage>/loss``) once the stage has finished, every evaluated retriever's metrics
(``<retriever>/<metric>``, with ``Δ`` vs base), and the report files as artifacts.

The default store is a file store in ``RUN/mlruns`` (``mlflow ui --backend-store-uri RUN/mlruns``);
``tracking.uri`` names any other (a tracking server, ``sqlite:///...`` with the full ``mlflow``
package). Ray Train v2 has no MLflow callback, so losses are logged by the driver from the
stage's loss record, the same numbers ``losses.jsonl`` keeps. Off with ``tracking.enabled: false``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Optional

from components import console, storage
from components.config import Config

RUN_DIR_TAG, CONFIG_TAG = "idistill.run_dir", "idistill.config"


def tracking_uri(cfg: Config) -> Optional[str]:
    """Where to log; None when tracking is off or the run directory is remote and no URI is set."""
    if not cfg.tracking.enabled:
        return None
    if cfg.tracking.uri:
        return cfg.tracking.uri
    if cfg.run_dir.startswith("s3://"):
        return None
    return Path(cfg.run_dir, "mlruns").resolve().as_uri()


def flat_params(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train.ranker.lr": "3e-05", ...}``: MLflow parameters from the nested config."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:6000]
    return out


@contextlib.contextmanager
def mlflow_run(cfg: Config) -> Iterator[Optional[Any]]:
    """The MLflow client inside this run's MLflow run (created with the config's parameters the
    first time), or None when tracking is off."""
    uri = tracking_uri(cfg)
    if uri is None:
        yield None
        return
    import mlflow

    if uri.startswith("file:"):  # MLflow keeps its file store in maintenance mode behind this switch
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.set_experiment(cfg.tracking.experiment)
    config = cfg.public_dump()
    digest = storage.content_hash({k: v for k, v in config.items() if k != "tracking"})
    found = mlflow.search_runs([experiment.experiment_id], output_format="list",
                               filter_string=f"tags.`{RUN_DIR_TAG}` = '{cfg.run_dir}' and tags.`{CONFIG_TAG}` = '{digest}'")
    if found:
        with mlflow.start_run(run_id=found[0].info.run_id):
            yield mlflow
        return
    name = cfg.run_dir.rstrip("/").split("/")[-1]
    with mlflow.start_run(run_name=name, tags={RUN_DIR_TAG: cfg.run_dir, CONFIG_TAG: digest}):
        mlflow.log_params(flat_params(config))
        yield mlflow


def _best_effort(fn: Any) -> Any:
    """Tracking is a record, not the work: a tracking store that is down costs a warning, never
    the run's artifacts (written before anything is logged)."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as e:  # any store, any transport
            console.say(f"tracking: not logged ({type(e).__name__}: {str(e)[:200]})")

    wrapper.__doc__ = fn.__doc__
    return wrapper


@_best_effort
def log_losses(cfg: Config, stage_name: str, losses: list[dict[str, Any]]) -> None:
    """A finished stage's per-step loss, as ``<stage>/loss`` at each step."""
    with mlflow_run(cfg) as mlflow:
        if mlflow is None:
            return
        from mlflow.entities import Metric

        client, run_id = mlflow.MlflowClient(), mlflow.active_run().info.run_id
        metrics = [Metric(f"{stage_name}/loss", float(x["loss"]), int(x["time"] * 1000), int(x["step"])) for x in losses]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[start : start + 1000])


@_best_effort
def log_report(cfg: Config, report: dict[str, Any], report_dir: str) -> None:
    """Each retriever's metrics and Δ vs base, and the report files as artifacts."""
    with mlflow_run(cfg) as mlflow:
        if mlflow is None:
            return
        metrics: dict[str, float] = {}
        for name, r in report["retrievers"].items():
            metrics |= {f"{name}/top-{k}": v for k, v in r["top_k_accuracy"].items()}
            metrics |= {f"{name}/{m}": v for m, v in r.items() if isinstance(v, (int, float))}
            metrics |= {f"{name}/Δ {m} vs base": d["delta"] for m, d in (r.get("vs_base") or {}).items()}
        mlflow.log_metrics({_key(k): float(v) for k, v in metrics.items()})
        if not report_dir.startswith("s3://"):
            mlflow.log_artifacts(report_dir, artifact_path="report")


def _key(name: str) -> str:
    """MLflow metric names allow letters, digits and ``_-./ `` only."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name.replace("@", "_at_").replace("Δ", "delta"))
