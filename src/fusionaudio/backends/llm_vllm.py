"""vLLM offline inference for GPUs: the model is loaded in-process and structured output
(JSON schema) is enforced by vLLM's guided decoding."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from fusionaudio.backends.llm import GenerationRequest, LLMReply
from fusionaudio.backends.model_files import package_version
from fusionaudio.backends.model_identity import content_identity


class VllmLLM:
    name = "vllm"

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        max_model_len: int = 8192,
        gpu_memory_utilization: float = 0.9,
    ) -> None:
        self.model = model
        self.tensor_parallel_size = tensor_parallel_size
        self.max_model_len = max_model_len
        self.gpu_memory_utilization = gpu_memory_utilization
        self.model_id = model
        self.revision = "not-loaded"
        self._llm: Any = None
        self._lock = threading.Lock()

    def fingerprint(self) -> dict[str, str]:
        return {
            "package": f"vllm=={package_version('vllm')}",
            "model": self.model,
            "weights": content_identity(self.model),
        }

    def setup(self) -> None:
        from vllm import LLM

        self._llm = LLM(
            model=self.model,
            tensor_parallel_size=self.tensor_parallel_size,
            max_model_len=self.max_model_len,
            gpu_memory_utilization=self.gpu_memory_utilization,
        )
        self.revision = f"vllm=={package_version('vllm')}"

    @staticmethod
    def sampling_params(
        max_tokens: int, temperature: float, json_schema: dict[str, Any] | None, seed: int
    ) -> Any:
        from vllm import SamplingParams

        kwargs: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        if json_schema is not None:
            try:  # vLLM >= 0.10
                from vllm.sampling_params import StructuredOutputsParams

                kwargs["structured_outputs"] = StructuredOutputsParams(json=json_schema)
            except ImportError:  # older vLLM
                from vllm.sampling_params import GuidedDecodingParams

                kwargs["guided_decoding"] = GuidedDecodingParams(json=json_schema)
        return SamplingParams(**kwargs)

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
        """One ``LLM.chat`` call with the batch's conversations, each with its own
        sampling parameters: vLLM schedules them together on the GPU."""
        if self._llm is None:
            raise RuntimeError("VllmLLM.setup() was not called")
        if not requests:
            return []
        params = [
            self.sampling_params(r.max_tokens, r.temperature, r.json_schema, r.seed)
            for r in requests
        ]
        started = time.perf_counter()
        with self._lock:
            outs = self._llm.chat([r.messages for r in requests], params, use_tqdm=False)
        latency = time.perf_counter() - started
        return [
            LLMReply(
                text=out.outputs[0].text,
                prompt_tokens=len(out.prompt_token_ids or []),
                completion_tokens=len(out.outputs[0].token_ids),
                latency_s=latency,
            )
            for out in outs
        ]
