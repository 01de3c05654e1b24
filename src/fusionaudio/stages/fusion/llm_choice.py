"""Choosing the fusion/QA LLM backend by name. Settings are plain and picklable; the
client is built in ``setup()`` on the worker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fusionaudio.backends.llm import LLMClient
from fusionaudio.backends.llm_llama_cpp import LlamaCppLLM
from fusionaudio.backends.llm_openai import JsonMode, OpenAILLM
from fusionaudio.backends.llm_vllm import VllmLLM
from fusionaudio.backends.openai_http import ServerSettings
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

    def fingerprint(self) -> dict[str, str]:
        """The backend's own fingerprint (package version, the weights' content identity,
        context) under the choice; a server's weights cannot be hashed from here, so an
        ``openai`` backend is known by its served model name."""
        if self.backend == "openai" and self.server is None:
            return {"backend": self.backend, "model": self.model, "json_mode": self.json_mode}
        return {"backend": self.backend, "json_mode": self.json_mode, **self.make().fingerprint()}

    def resources(self) -> Resources:
        """In-process llama.cpp uses its threads; vLLM a GPU; a server almost nothing here."""
        return Resources(
            cpus=self.threads if self.backend == "llama_cpp" else 0.25,
            gpus=1.0 if self.backend == "vllm" else 0.0,
        )

    def make(self) -> LLMClient:
        if self.backend == "llama_cpp":
            return LlamaCppLLM(self.model, self.models_dir, n_ctx=self.n_ctx, threads=self.threads)
        if self.backend == "openai":
            if self.server is None:
                raise ValueError("the openai LLM backend needs a server (base_url, model)")
            return OpenAILLM(self.server, self.json_mode)
        if self.backend == "vllm":
            return VllmLLM(self.model, tensor_parallel_size=self.tensor_parallel_size)
        raise ValueError(f"unknown LLM backend {self.backend!r}; known: llama_cpp, openai, vllm")
