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


def test_only_the_rag_app_is_reachable_over_http_in_the_cloud_config():
    tree = yaml.safe_load((SERVE / "serve_config.cloud.yaml").read_text())
    routed = [app["name"] for app in tree["applications"] if app.get("route_prefix", "/") is not None]
    assert routed == ["rag"]  # no model server on the public proxy: the generator's vLLM listens on 127.0.0.1 only
    overrides = " ".join(tree["applications"][0]["args"]["set"])
    assert "generator.local.engine=vllm" in overrides and "allow_unauthenticated" not in overrides


def test_serving_beyond_loopback_needs_a_token_or_an_explicit_no(monkeypatch):
    from components.config import load_config
    from serve.app import require_auth

    cfg = load_config(None, [])
    for host in ("127.0.0.1", "::1", "localhost"):
        require_auth(cfg, "", host)
    for host in ("0.0.0.0", "10.0.0.5", None):  # None: a Serve config file binds where the builder cannot see
        with pytest.raises(ConfigError, match="IDISTILL_API_TOKEN"):
            require_auth(cfg, "", host)
        require_auth(cfg, "a-token", host)
        require_auth(load_config(None, ["serve.allow_unauthenticated=true"]), "", host)


def test_a_generator_failure_is_named_without_its_upstream():
    from serve.api import unavailable

    assert unavailable("timed out after 60 s at http://10.0.0.5:8000/v1") == "generator unavailable: it timed out"
    assert unavailable("HTTP 500 from http://***@llm/v1: {'secret': 'trace'}") == "generator unavailable: it answered HTTP 500"
    assert unavailable("ClientConnectorError at http://10.0.0.5/v1") == "generator unavailable: it could not be reached"


def test_the_vllm_generator_is_started_on_loopback_with_the_configured_model():
    import importlib.util

    from components.config import LocalLLMConfig
    from components.llm.local_server import LocalLLMServer

    with pytest.raises(ConfigError, match="needs local.model_path"):
        LocalLLMServer(LocalLLMConfig(engine="vllm"))
    server = LocalLLMServer(LocalLLMConfig(engine="vllm", model_path="Qwen/Qwen2.5-7B-Instruct", n_ctx=8192))
    assert server.endpoint.model == "qwen2.5-7b-instruct" and server.endpoint.base_url.startswith("http://127.0.0.1:")
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(ConfigError, match=r"pip install -e '.\[gpu\]'"):
            server.command()
    else:
        cmd = server.command()
        assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--max-model-len") + 1] == "8192"


def test_every_deployment_bounds_its_queue():
    """Past the bound a client gets a 503 at once instead of a request that waits without end."""
    from serve.deployments import Generator, RAGIngress, Retriever

    for deployment in (RAGIngress, Retriever, Generator):
        assert 0 < deployment.max_queued_requests <= 1024, deployment.name
