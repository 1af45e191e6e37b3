"""The Serve config files are valid for Serve itself, and ``idistill serve`` reads them."""

from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from components.errors import ConfigError
from serve.app import DEFAULT_SERVE_CONFIG, deployment_options

SERVE = Path(__file__).resolve().parents[1] / "serve"


@pytest.mark.parametrize("name", ["serve_config.yaml", "serve_config.cloud.yaml"])
def test_serve_configs_pass_serves_schema(name):
    schema = ServeDeploySchema.model_validate(yaml.safe_load((SERVE / name).read_text()))
    rag = next(app for app in schema.applications if app.name == "rag")
    assert rag.import_path == "serve.app:build_app" and rag.args["run_dir"]
    assert {d.name for d in rag.deployments} == {"RAGIngress", "Retriever", "Generator"}


def test_deployment_options_come_from_the_file():
    options = deployment_options(DEFAULT_SERVE_CONFIG)
    assert options["Retriever"]["autoscaling_config"]["max_replicas"] >= options["Retriever"]["autoscaling_config"]["min_replicas"]
    assert options["RAGIngress"]["ray_actor_options"]["num_cpus"] < 1  # leaves CPUs for Ray tasks on a 2-core box


def test_a_broken_serve_config_is_named(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("applications:\n  - name: rag\n    import_path: serve.app:build_app\n    deployments:\n      - name: Retriever\n        num_replicas: -1\n")
    with pytest.raises(ConfigError, match="is not a valid Serve config"):
        deployment_options(bad)
    with pytest.raises(ConfigError, match="not found"):
        deployment_options(tmp_path / "missing.yaml")
