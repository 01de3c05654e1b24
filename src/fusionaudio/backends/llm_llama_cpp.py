"""llama.cpp through llama-cpp-python: the offline LLM. JSON schemas become grammars."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from fusionaudio.backends.gguf_models import gguf_identity, resolve_gguf
from fusionaudio.backends.llm import LLMReply
from fusionaudio.backends.model_files import package_version, sha256_file


class LlamaCppLLM:
    name = "llama_cpp"

    def __init__(self, model: str, models_dir: Path, n_ctx: int = 4096, threads: int = 2) -> None:
        self.model = model
        self.models_dir = models_dir
        self.n_ctx = n_ctx
        self.threads = threads
        self.model_id = model
        self.revision = "not-loaded"
        self._llm: Any = None
        # One llama.cpp context serves one request at a time.
        self._lock = threading.Lock()

    def fingerprint(self) -> dict[str, str]:
        return {
            "package": f"llama-cpp-python=={package_version('llama-cpp-python')}",
            "model": self.model,
            "weights": gguf_identity(self.model),
            "n_ctx": str(self.n_ctx),
        }

    def setup(self) -> None:
        from llama_cpp import Llama

        path = resolve_gguf(self.model, self.models_dir)
        self._llm = Llama(
            model_path=str(path), n_ctx=self.n_ctx, n_threads=self.threads, verbose=False, seed=0
        )
        size = path.stat().st_size
        self.revision = (
            f"gguf:{path.name}:{size}" if size > 200_000_000 else "sha256:" + sha256_file(path)[:16]
        )

    def generate(
        self,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None,
        seed: int,
    ) -> LLMReply:
        if self._llm is None:
            raise RuntimeError("LlamaCppLLM.setup() was not called")
        kwargs: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        started = time.perf_counter()
        with self._lock:
            out = self._llm.create_chat_completion(**kwargs)
        usage = out.get("usage") or {}
        return LLMReply(
            text=str(out["choices"][0]["message"].get("content") or ""),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_s=time.perf_counter() - started,
        )
