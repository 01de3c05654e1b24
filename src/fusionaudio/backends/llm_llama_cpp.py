"""llama.cpp through llama-cpp-python: the offline LLM. JSON schemas become grammars.

Generation runs on ``ParallelDecoder`` (``llama_parallel.py``): a batch's answers are
decoded as parallel sequences of one context, with the shared prompt prefix evaluated
once and each token checked against its grammar before the whole vocabulary is filtered.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusionaudio.backends.gguf_models import gguf_identity, resolve_gguf
from fusionaudio.backends.llama_parallel import ParallelDecoder
from fusionaudio.backends.llm import GenerationRequest, LLMReply
from fusionaudio.backends.model_files import package_version, sha256_file

# The Llama object only loads the weights and the tokenizer; decoding uses the parallel
# decoder's own context, so the Llama's context is kept as small as llama.cpp allows.
_UNUSED_CONTEXT = 64


class LlamaCppLLM:
    name = "llama_cpp"

    def __init__(
        self, model: str, models_dir: Path, n_ctx: int = 4096, threads: int = 2, parallel: int = 1
    ) -> None:
        self.model = model
        self.models_dir = models_dir
        self.n_ctx = n_ctx
        self.threads = threads
        self.parallel = parallel
        self.model_id = model
        self.revision = "not-loaded"
        self._llm: Any = None
        self._decoder: ParallelDecoder | None = None
        # One llama.cpp context serves one batch at a time.
        self._lock = threading.Lock()

    def fingerprint(self) -> dict[str, str]:
        return {
            "package": f"llama-cpp-python=={package_version('llama-cpp-python')}",
            "model": self.model,
            "weights": gguf_identity(self.model),
            "n_ctx": str(self.n_ctx),
            # answers come from the parallel decoder's sampling (grammar checked per token)
            "decoder": "llama_parallel-v1",
        }

    def setup(self) -> None:
        from llama_cpp import Llama

        path = resolve_gguf(self.model, self.models_dir)
        self._llm = Llama(
            model_path=str(path),
            n_ctx=_UNUSED_CONTEXT,
            n_threads=self.threads,
            verbose=False,
            seed=0,
        )
        self._decoder = ParallelDecoder(self._llm, self.parallel, self.n_ctx, self.threads)
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
        (reply,) = self.generate_batch(
            [GenerationRequest(messages, max_tokens, temperature, json_schema, seed)]
        )
        return reply

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[LLMReply]:
        if self._decoder is None:
            raise RuntimeError("LlamaCppLLM.setup() was not called")
        with self._lock:
            return self._decoder.generate(requests)
