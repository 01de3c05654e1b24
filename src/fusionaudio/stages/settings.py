"""What every role's config section shares.

Each expert role keeps its YAML section next to its stage and its backend registry
(``stages/experts/vad.py`` holds ``VadConfig``, ``VAD_BACKENDS`` and ``VadStage``), so a
role's name is its config key, its file and its registry entry. ``config.py`` only
composes the sections; it sits above the stages, which may not import it.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fusionaudio.backends.openai_http import ServerSettings, ServerSlots
from fusionaudio.stages.base import Stage


class Strict(BaseModel):
    """Unknown keys are errors, so a typo never silently falls back to a default; frozen,
    so a section can be shared by stages and hashed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Strict):
    """An OpenAI-compatible server (vLLM, llama.cpp server, Ollama, a hosted API)."""

    base_url: str
    model: str
    api_key_env: str | None = Field(None, description="environment variable holding the key")
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    max_concurrency: int = Field(4, ge=1)


def server_settings(config: ServerConfig | None) -> ServerSettings | None:
    """The backends' plain form of a server section (backends do not know pydantic)."""
    if config is None:
        return None
    return ServerSettings(**config.model_dump())


# A role's ``batch_size``: clips per backend call; None picks the role's default.
BatchSize = Annotated[
    int | None,
    Field(
        ge=1,
        description="clips per backend call (batched in the model, or sent to a server at "
        "once); None: the role's default, larger on CUDA",
    ),
]


def batch_size_for(batch_size: int | None, device: str, cuda: int = 8, cpu: int = 1) -> int:
    """A section's ``batch_size``, or the role's default for its device: batched calls pay
    off on a GPU; on a CPU few clips at a time keep the stage's memory small and its
    latency even."""
    if batch_size is not None:
        return batch_size
    return cuda if device.startswith("cuda") else cpu


def default_models_dir() -> Path:
    root = os.environ.get("FUSIONAUDIO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fusionaudio"
    )
    return Path(root) / "models"


@dataclass(frozen=True)
class BuildContext:
    """The few facts a role needs about the rest of the run. The defaults are a stage
    on its own: nothing separated before it, the tagger on."""

    models_dir: Path = field(default_factory=default_models_dir)
    separated: bool = False
    """Separation runs: ASR and voice listen to the vocal stem, music to the accompaniment."""
    tagging: bool = True
    """Tagging runs: voice reads its Singing classes."""
    servers: ServerSlots = field(default_factory=ServerSlots)
    """One concurrency limit per server for every stage that talks to it."""


class RoleConfig(Strict):
    """An expert role's section: on or off, and how to build its stage."""

    enabled: bool = True

    @abstractmethod
    def build(self, context: BuildContext) -> Stage:
        """Each role builds its own stage, so the graph needs no code per role."""


def known_name(kind: str, name: str, registry: Mapping[str, object]) -> str:
    """A config's backend name checked against the role's registry, so the error lists
    what exists instead of failing later inside a stage."""
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")
    return name
