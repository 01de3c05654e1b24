"""The one stage contract.

A stage declares what it needs (media views by name, other experts' cues) and what it
produces; ``setup()`` loads models once per worker; ``__call__`` maps a batch of inputs
to one cue per input. Constructors store configuration only, so a stage pickles before
``setup()`` and can be shipped to any worker. A stage never opens files or knows the
engine that runs it.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fusionaudio.media.audio import AudioView
from fusionaudio.media.frames import VideoFrame
from fusionaudio.schema import Clip, Cue, Provenance

# Media views a stage may name in ``needs``; the pipeline's loader builds them.
AUDIO_16K_MONO = "audio_16k_mono"
AUDIO_44K_STEREO = "audio_44k_stereo"
VIDEO_FRAMES = "video_frames"
MEDIA_VIEWS = frozenset({AUDIO_16K_MONO, AUDIO_44K_STEREO, VIDEO_FRAMES})

View = AudioView | list[VideoFrame]


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class StageInput:
    clip: Clip
    views: Mapping[str, View]
    cues: Mapping[str, Cue]

    def audio(self, name: str) -> AudioView:
        view = self.views[name]
        if not isinstance(view, AudioView):
            raise TypeError(f"view {name!r} is not audio")
        return view


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable hash of a JSON-able configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Stage(ABC):
    name: str
    needs: tuple[str, ...]
    produces: str
    resources: Resources = Resources()
    batch_size: int = 1
    workers: int = 1

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything the output depends on besides the inputs: backend, params, model version.

        Must be computable before ``setup()``: it keys the cache, so a cached clip never
        loads the model.
        """

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load models; called once per worker before the first batch."""

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Release what ``setup()`` acquired."""

    @abstractmethod
    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        """One cue per input, in order. Raising fails the whole batch; the pipeline then
        retries each clip alone, so one bad clip costs only its own result."""

    def config_hash(self) -> str:
        return config_hash(self.fingerprint())

    def provenance(
        self, backend: str, model_id: str, revision: str, elapsed_s: float
    ) -> Provenance:
        return Provenance(
            stage=self.name,
            backend=backend,
            model_id=model_id,
            model_revision=revision,
            config_hash=self.config_hash(),
            elapsed_s=round(elapsed_s, 6),
        )
