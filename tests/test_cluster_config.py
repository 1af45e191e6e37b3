"""Cluster files: ray_cluster.yaml passes the validation `ray up` applies; the cloud config differs
from the local defaults only where a cluster must; the local config file is the defaults."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from components.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]


def _cluster() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())


def _validate(cfg: dict[str, Any]) -> None:
    # what `ray up` does to a cluster file before launching anything (commands._bootstrap_config)
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(cfg)))


def test_ray_cluster_yaml_passes_rays_own_validation():
    cfg = _cluster()
    _validate(cfg)
    groups = cfg["available_node_types"]
    assert cfg["head_node_type"] == "head" and {"cpu_worker", "gpu_worker"} <= set(groups)
    for name in ("cpu_worker", "gpu_worker"):
        assert 0 <= groups[name]["min_workers"] <= groups[name]["max_workers"]
    assert groups["gpu_worker"]["node_config"]["InstanceType"].startswith(("g5", "g6"))
    assert any("[gpu]" in c for c in groups["gpu_worker"]["worker_setup_commands"])


@pytest.mark.parametrize(
    "path, value",
    [(("available_node_types", "gpu_worker", "min_workers"), "two"),
     (("available_node_types", "gpu_worker", "max_worker"), 4),
     (("head_node_type",), "gpu_head")],
)
def test_the_validation_is_real(path, value):
    cfg = _cluster()
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(Exception):
        _validate(cfg)


def _leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _differences(cfg: Config) -> set[str]:
    ours, defaults = dict(_leaves(cfg.model_dump(mode="json"))), dict(_leaves(Config().model_dump(mode="json")))
    return {k for k in ours if ours[k] != defaults[k]}


def test_local_config_file_is_the_embedded_defaults():
    assert _differences(load_config(ROOT / "configs" / "local.yaml")) == set()


def test_cloud_config_differs_only_where_a_cluster_must():
    allowed = {"run_dir", "data.path", "ray.address", "ray.embed_actors", "labels.backend", "labels.vllm.model",
               "labels.vllm.concurrency", "train.num_workers", "train.use_gpu", "generator.endpoints"}
    cloud = load_config(ROOT / "configs" / "cloud.yaml")
    assert _differences(cloud) <= allowed
    assert cloud.run_dir.startswith("s3://") and cloud.data.path.startswith("s3://")
