"""Ask, validate, and ask again with the problems: the loop shared by fusion and QA."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fusionaudio.backends.llm import GenerationRequest, LLMClient
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


@dataclass(frozen=True)
class Ask(Generic[T]):
    """One item's question: its messages and the check its answers must pass."""

    messages: list[dict[str, Any]]
    check: Callable[[dict[str, Any] | None], tuple[T, list[str]]]


def generate_validated(
    client: LLMClient,
    asks: Sequence[Ask[T]],
    schema: dict[str, Any],
    what: str,
    max_tokens: int,
    temperature: float,
    seed: int,
    max_attempts: int,
) -> list[Validated[T] | AnswerRejected]:
    """Generate under ``schema`` until each ask's ``check`` finds no problem; each retry
    sees the rejected answer and its problems, a little more temperature and another seed.

    Every attempt is one ``generate_batch`` call over the asks still open, so a backend
    that decodes several answers together gets them together. An ask whose attempts all
    fail gets its ``AnswerRejected`` in its place; the others are unaffected.
    """
    messages = [list(ask.messages) for ask in asks]
    rejected: list[list[list[str]]] = [[] for _ in asks]
    tokens = [{"prompt": 0, "completion": 0} for _ in asks]
    results: list[Validated[T] | AnswerRejected | None] = [None] * len(asks)
    pending = list(range(len(asks)))
    for attempt in range(1, max_attempts + 1):
        if not pending:
            break
        requests = [
            GenerationRequest(
                messages[i],
                max_tokens=max_tokens,
                temperature=temperature + 0.2 * (attempt - 1),
                json_schema=schema,
                seed=seed + attempt - 1,
            )
            for i in pending
        ]
        replies = client.generate_batch(requests)
        still: list[int] = []
        for i, reply in zip(pending, replies, strict=True):
            tokens[i]["prompt"] += reply.prompt_tokens or 0
            tokens[i]["completion"] += reply.completion_tokens or 0
            value, problems = asks[i].check(parse_json_object(reply.text))
            if not problems:
                results[i] = Validated(value, attempt, rejected[i], tokens[i])
                continue
            rejected[i].append(problems)
            feedback = f"That answer was rejected: {'; '.join(problems)}. Write the JSON again, following every rule."
            messages[i] = [
                *asks[i].messages,
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": feedback},
            ]
            still.append(i)
        pending = still
    for i in pending:
        results[i] = AnswerRejected(
            f"{what} rejected {max_attempts} times; last problems: " + "; ".join(rejected[i][-1]),
            rejected[i],
            tokens[i],
        )
    return [r for r in results if r is not None]
