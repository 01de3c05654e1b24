"""One interface for every text LLM the fusion and QA stages use.

``generate`` takes chat messages and, optionally, a JSON schema; every backend that can
constrain decoding to the schema does (llama.cpp grammars, vLLM structured outputs,
``response_format`` on servers), so small models still return parseable JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class LLMReply:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float


@dataclass(frozen=True)
class GenerationRequest:
    """One chat generation, as a batch of several is handed to ``generate_batch``."""

    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float
    json_schema: dict[str, Any] | None
    seed: int


@runtime_checkable
class LLMClient(Protocol):
    name: str
    model_id: str
    revision: str

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def generate(
        self,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None,
        seed: int,
    ) -> LLMReply: ...

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[LLMReply]:
        """Each request's reply, in order, generated together where the backend can."""
        ...
