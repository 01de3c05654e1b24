"""Choosing the fusion/QA LLM backend by name. Settings are plain and picklable; the
client is built in ``setup()`` on the worker."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fusionaudio.backends.llm import LLMClient
from fusionaudio.backends.llm_llama_cpp import LlamaCppLLM
from fusionaudio.backends.llm_openai import JsonMode, OpenAILLM
from fusionaudio.backends.llm_vllm import VllmLLM
from fusionaudio.backends.openai_http import ServerSettings, ServerSlots
from fusionaudio.stages.base import Resources

LLMBackendName = Literal["llama_cpp", "openai", "vllm"]


@dataclass(frozen=True)
class LLMSettings:
    backend: LLMBackendName = "llama_cpp"
    model: str = "qwen2.5-coder-1.5b"
    models_dir: Path = Path("models")
    server: ServerSettings | None = None
    json_mode: JsonMode = "json_schema"
    n_ctx: int = 4096
    threads: int = 1
    tensor_parallel_size: int = 1
    parallel: int = 1
    """Sequences in-process llama.cpp decodes together: the stage's batch size."""

    def fingerprint(self) -> dict[str, str]:
        """The backend's own fingerprint (package version, the weights' content identity,
        context) under the choice; a server's weights cannot be hashed from here, so an
        ``openai`` backend is known by its served model name."""
        if self.backend == "openai" and self.server is None:
            return {"backend": self.backend, "model": self.model, "json_mode": self.json_mode}
        return {"backend": self.backend, "json_mode": self.json_mode, **self.make().fingerprint()}

    def resources(self) -> Resources:
        """In-process llama.cpp uses its threads; vLLM one GPU per tensor-parallel rank; a
        server almost nothing here."""
        return Resources(
            cpus=self.threads if self.backend == "llama_cpp" else 0.25,
            gpus=float(self.tensor_parallel_size) if self.backend == "vllm" else 0.0,
        )

    def make(self, servers: ServerSlots | None = None) -> LLMClient:
        if self.backend == "llama_cpp":
            return LlamaCppLLM(
                self.model,
                self.models_dir,
                n_ctx=self.n_ctx,
                threads=self.threads,
                parallel=self.parallel,
            )
        if self.backend == "openai":
            if self.server is None:
                raise ValueError("the openai LLM backend needs a server (base_url, model)")
            return OpenAILLM(self.server, self.json_mode, servers)
        if self.backend == "vllm":
            return VllmLLM(self.model, tensor_parallel_size=self.tensor_parallel_size)
        raise ValueError(f"unknown LLM backend {self.backend!r}; known: llama_cpp, openai, vllm")


# Backends whose one instance must serve every stage that names them: vLLM holds the model
# in GPU memory (twice would not fit), and a server's max_concurrency is one limit for
# all its callers. In-process llama.cpp keeps one model per stage, so that fusion and QA
# decode side by side on a CPU's cores (at the cost of its memory twice).
SHARED_BACKENDS = frozenset({"vllm", "openai"})


class SharedLLM:
    """One set-up client for every stage in this process that names the same LLM.

    Built before ``setup()`` and pickled with the stages; a copy in another process (a
    Ray actor) starts empty and sets up its own client there.
    """

    def __init__(self, settings: LLMSettings, servers: ServerSlots | None = None) -> None:
        self.settings = settings
        self.servers = servers
        self._lock = threading.Lock()
        self._client: LLMClient | None = None

    def client(self) -> LLMClient:
        with self._lock:
            if self._client is None:
                client = self.settings.make(self.servers)
                client.setup()
                self._client = client
            return self._client

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "servers": self.servers}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"], state["servers"])  # type: ignore[misc]


def open_client(
    llm: LLMSettings, shared: SharedLLM | None, servers: ServerSlots | None = None
) -> LLMClient:
    """The shared client when stages share one, else this stage's own, set up."""
    if shared is not None:
        return shared.client()
    client = llm.make(servers)
    client.setup()
    return client
