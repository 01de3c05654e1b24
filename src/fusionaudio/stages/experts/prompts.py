"""Prompts are versioned files next to the stages that use them; the file name
(``<name>.v<N>.txt``) is the version that goes into provenance."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Prompt:
    text: str
    version: str


def load_prompt(name: str, version: int = 1) -> Prompt:
    stem = f"{name}.v{version}"
    text = (
        resources.files("fusionaudio.stages.experts")
        .joinpath(f"prompts/{stem}.txt")
        .read_text("utf-8")
    )
    return Prompt(text=text.strip(), version=stem)
