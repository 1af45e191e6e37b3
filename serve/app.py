"""The RAG application: its Serve builder, and the deployment shape read from a Serve config file.

``serve run serve/serve_config.yaml`` (or ``serve deploy`` to a cluster) calls ``build_app`` with
the file's ``args``; ``idistill serve`` calls it too, with the same file's deployment settings
(replicas, autoscaling, resources), so both start the same application.

The app serves a finished run: its config is the one the run recorded in ``RUN/manifest.json``
(so corpus and encoder match the index), with ``config`` / ``set`` applied on top. The bearer
token is read from the environment variable ``serve.auth_token_env`` names, where the builder
runs; only its SHA-256 reaches the replicas. Without a token the app starts only on loopback
(``idistill serve --host 127.0.0.1``) or with ``serve.allow_unauthenticated: true``: a Serve config
file sets its own bind address, which the builder cannot see, so there a token is required.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import yaml
from ray.serve import Application

from components.config import Config
from components.errors import ConfigError
from components.run import init_ray, run_config
from serve.api import token_digest
from serve.deployments import Generator, RAGIngress, Retriever

DEFAULT_SERVE_CONFIG = Path(__file__).with_name("serve_config.yaml")
APP_NAME = "rag"


def deployment_options(serve_config: str | Path = DEFAULT_SERVE_CONFIG, app_name: str = APP_NAME) -> dict[str, dict[str, Any]]:
    """Per-deployment options (replicas, autoscaling, resources) from a Serve config file,
    validated by Serve's own schema."""
    from ray.serve.schema import ServeDeploySchema

    path = Path(serve_config)
    if not path.is_file():
        raise ConfigError(f"Serve config file not found: {path}")
    try:
        schema = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except Exception as e:  # YAML and schema errors alike: the file is at fault
        raise ConfigError(f"{path} is not a valid Serve config: {e}") from None
    for app in schema.applications:
        if app.name == app_name:
            return {d.name: {k: v for k, v in d.model_dump(exclude_unset=True).items() if k != "name"} for d in app.deployments}
    raise ConfigError(f"{path} has no application named {app_name!r}")


def require_auth(cfg: Config, token: str, host: Optional[str]) -> None:
    """Refuse to serve without a token where the endpoint may be reachable beyond this machine:
    a ``host`` other than loopback, or an unknown one (a Serve config file binds its own), unless
    the config says explicitly that no auth is wanted."""
    if token or cfg.serve.allow_unauthenticated or (host is not None and _loopback(host)):
        return
    where = f"serve.host {host}" if host is not None else "a Serve config file's http_options"
    raise ConfigError(
        f"{where} may be reachable beyond this machine and no bearer token is set: export "
        f"{cfg.serve.auth_token_env}=<token>, or set serve.allow_unauthenticated=true to serve without auth"
    )


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(cfg: Config, options: Optional[dict[str, dict[str, Any]]] = None, host: Optional[str] = None) -> Application:
    """The application graph for ``cfg``, with per-deployment ``options`` applied; ``host`` is
    where the HTTP proxy listens (None: unknown, as when Serve's CLI runs a config file)."""
    options = options or {}
    token = os.environ.get(cfg.serve.auth_token_env, "")
    require_auth(cfg, token, host)
    settings = {
        "default_k": cfg.generator.k,
        "max_k": cfg.serve.max_k,
        "max_body_bytes": cfg.serve.max_body_bytes,
        "max_question_chars": cfg.serve.max_question_chars,
        "token_sha256": token_digest(token) if token else None,
    }
    config = cfg.model_dump(mode="json")
    retriever = Retriever.options(**options.get("Retriever", {})).bind(config)
    generator = Generator.options(**options.get("Generator", {})).bind(config)
    return RAGIngress.options(**options.get("RAGIngress", {})).bind(retriever, generator, settings)


def build_app(args: dict[str, Any]) -> Application:
    """Serve application builder. ``args``: ``run_dir`` (required), ``config`` (a YAML file replacing
    the run's recorded config), ``set`` (a list of ``key.path=value`` overrides)."""
    if not args.get("run_dir"):
        raise ConfigError("the application needs args.run_dir: the run directory whose artifacts to serve")
    overrides = args.get("set") or []
    if isinstance(overrides, str):
        overrides = [overrides]
    return bind(run_config(str(args["run_dir"]), args.get("config"), overrides))


def start(cfg: Config, serve_config: str = str(DEFAULT_SERVE_CONFIG), name: str = APP_NAME, route_prefix: str = "/") -> str:
    """Deploy the app on the current (or a new local) Ray cluster; return its base URL once ready."""
    from ray import serve

    app = bind(cfg, deployment_options(serve_config), cfg.serve.host)  # refused before anything starts
    init_ray(cfg.ray)
    serve.start(http_options={"host": cfg.serve.host, "port": cfg.serve.port})
    serve.run(app, name=name, route_prefix=route_prefix, blocking=False)
    return f"http://{cfg.serve.host}:{cfg.serve.port}{route_prefix.rstrip('/')}"
