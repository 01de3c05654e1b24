"""Any OpenAI-compatible server as the fusion/QA LLM, with structured output where the
server supports it (``json_schema`` for OpenAI and vLLM, ``json_object`` + schema for the
llama.cpp servers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from fusionaudio.backends.llm import GenerationRequest, LLMReply
from fusionaudio.backends.openai_http import ServerSettings, ServerSlots, concurrently

JsonMode = Literal["json_schema", "json_object", "none"]


class OpenAILLM:
    name = "openai"

    def __init__(
        self,
        server: ServerSettings,
        json_mode: JsonMode = "json_schema",
        servers: ServerSlots | None = None,
    ) -> None:
        self.server = server
        self.json_mode = json_mode
        self.model_id = server.model
        self.revision = f"server:{server.base_url}"
        self._client = server.client(servers)

    def fingerprint(self) -> dict[str, str]:
        return {"model": self.server.model, "json_mode": self.json_mode}

    def setup(self) -> None:
        pass

    def generate(
        self,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None,
        seed: int,
    ) -> LLMReply:
        response_format: dict[str, Any] | None = None
        if json_schema is not None and self.json_mode == "json_schema":
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": json_schema, "strict": True},
            }
        elif json_schema is not None and self.json_mode == "json_object":
            response_format = {"type": "json_object", "schema": json_schema}
        result = self._client.chat(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            response_format=response_format,
            seed=seed,
        )
        return LLMReply(
            result.text, result.prompt_tokens, result.completion_tokens, result.latency_s
        )

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[LLMReply]:
        """The batch's requests at once; the server client holds them to ``max_concurrency``
        (one limit shared by every stage that talks to this server)."""
        return concurrently(self._one, requests)

    def _one(self, r: GenerationRequest) -> LLMReply:
        return self.generate(r.messages, r.max_tokens, r.temperature, r.json_schema, r.seed)
