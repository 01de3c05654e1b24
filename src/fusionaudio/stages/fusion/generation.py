"""Ask, validate, and ask again with the problems: the loop shared by fusion and QA."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fusionaudio.backends.llm import LLMClient
from fusionaudio.stages.fusion.validate import parse_json_object

T = TypeVar("T")


class AnswerRejected(RuntimeError):
    """Every attempt failed validation; the message names the last problems."""

    def __init__(self, message: str, rejected: list[list[str]], tokens: dict[str, int]) -> None:
        super().__init__(message)
        self.rejected = rejected
        self.tokens = tokens


@dataclass
class Validated(Generic[T]):
    value: T
    attempts: int
    rejected: list[list[str]] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})


def generate_validated(
    client: LLMClient,
    messages: list[dict[str, Any]],
    check: Callable[[dict[str, Any] | None], tuple[T, list[str]]],
    schema: dict[str, Any],
    what: str,
    max_tokens: int,
    temperature: float,
    seed: int,
    max_attempts: int,
) -> Validated[T]:
    """Generate under ``schema`` until ``check`` finds no problem; each retry sees the
    rejected answer and its problems, a little more temperature and another seed."""
    base = list(messages)
    rejected: list[list[str]] = []
    tokens = {"prompt": 0, "completion": 0}
    for attempt in range(1, max_attempts + 1):
        reply = client.generate(
            messages,
            max_tokens=max_tokens,
            temperature=temperature + 0.2 * (attempt - 1),
            json_schema=schema,
            seed=seed + attempt - 1,
        )
        tokens["prompt"] += reply.prompt_tokens or 0
        tokens["completion"] += reply.completion_tokens or 0
        value, problems = check(parse_json_object(reply.text))
        if not problems:
            return Validated(value, attempt, rejected, tokens)
        rejected.append(problems)
        feedback = f"That answer was rejected: {'; '.join(problems)}. Write the JSON again, following every rule."
        messages = [
            *base,
            {"role": "assistant", "content": reply.text},
            {"role": "user", "content": feedback},
        ]
    raise AnswerRejected(
        f"{what} rejected {max_attempts} times; last problems: " + "; ".join(rejected[-1]),
        rejected,
        tokens,
    )
