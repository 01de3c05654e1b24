"""Prompts are versioned files next to the stages that use them (or a user's own file).
Provenance and cache keys carry the file's name *and* a hash of its text
(``Prompt.identity``): editing a prompt recomputes the stages that send it, even when
nobody bumps the version in the name.

A prompt file may end with worked examples, each a ``### example`` section (the user
turn) followed by a ``### answer`` section (the assistant turn); they are sent as chat
turns, which small models imitate more faithfully than examples inside the system text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

EXAMPLE = "### example"
ANSWER = "### answer"


@dataclass(frozen=True)
class Prompt:
    text: str
    version: str

    @property
    def identity(self) -> str:
        """The name and the text's hash: what cache keys and provenance record."""
        digest = hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:12]
        return f"{self.version}@sha256:{digest}"

    @property
    def system(self) -> str:
        return self.text.split(EXAMPLE, 1)[0].strip()

    @property
    def examples(self) -> list[tuple[str, str]]:
        pairs = []
        for block in self.text.split(EXAMPLE)[1:]:
            user, _, answer = block.partition(ANSWER)
            pairs.append((user.strip(), answer.strip()))
        return pairs

    @property
    def example_captions(self) -> list[str]:
        captions = []
        for _, answer in self.examples:
            try:
                value = json.loads(answer)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict) and isinstance(value.get("caption"), str):
                captions.append(value["caption"])
        return captions

    def messages(self, user: str) -> list[dict[str, Any]]:
        turns: list[dict[str, Any]] = [{"role": "system", "content": self.system}]
        for example, answer in self.examples:
            turns.append({"role": "user", "content": example})
            turns.append({"role": "assistant", "content": answer})
        turns.append({"role": "user", "content": user})
        return turns


def read_prompt_file(path: Path) -> Prompt:
    """A user's prompt file, in the format of the shipped ones; its stem is its version."""
    return Prompt(text=path.read_text("utf-8").strip(), version=path.stem)


def load_prompt(name: str, version: int = 1) -> Prompt:
    stem = f"{name}.v{version}"
    text = (
        resources.files("fusionaudio.stages.experts")
        .joinpath(f"prompts/{stem}.txt")
        .read_text("utf-8")
    )
    return Prompt(text=text.strip(), version=stem)
