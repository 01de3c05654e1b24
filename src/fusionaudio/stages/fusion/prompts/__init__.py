"""Versioned prompt files of stage 2 (``<name>.v<N>.txt``)."""

from __future__ import annotations

from importlib import resources

from fusionaudio.stages.experts.prompts import Prompt


def load_fusion_prompt(name: str, version: int = 1) -> Prompt:
    stem = f"{name}.v{version}"
    text = (
        resources.files("fusionaudio.stages.fusion.prompts")
        .joinpath(f"{stem}.txt")
        .read_text("utf-8")
    )
    return Prompt(text=text.strip(), version=stem)
