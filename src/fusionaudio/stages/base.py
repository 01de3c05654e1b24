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
from typing import Any, Protocol

from fusionaudio.media.audio import AudioView
from fusionaudio.media.frames import VideoFrame
from fusionaudio.schema import Clip, Cue, MediaSummary, Provenance

# Media views a stage may name in ``needs``; the pipeline's loader builds them.
AUDIO_16K_MONO = "audio_16k_mono"
AUDIO_44K_STEREO = "audio_44k_stereo"
AUDIO_48K_MONO = "audio_48k_mono"
VIDEO_FRAMES = "video_frames"
MEDIA_VIEWS = frozenset({AUDIO_16K_MONO, AUDIO_44K_STEREO, AUDIO_48K_MONO, VIDEO_FRAMES})

# Views that stages derive (``provides_views``): the separated stems, mono 16 kHz.
VOCALS_16K = "vocals_16k"
ACCOMPANIMENT_16K = "accompaniment_16k"
DERIVED_VIEWS = frozenset({VOCALS_16K, ACCOMPANIMENT_16K})
VIEWS = MEDIA_VIEWS | DERIVED_VIEWS

View = AudioView | list[VideoFrame]


class BackendInfo(Protocol):
    """What every backend tells about itself, for provenance."""

    @property
    def name(self) -> str: ...

    @property
    def model_id(self) -> str: ...

    @property
    def revision(self) -> str: ...


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class StageInput:
    clip: Clip
    views: Mapping[str, View]
    cues: Mapping[str, Cue]
    media: MediaSummary | None = None

    def audio(self, name: str) -> AudioView:
        view = self.views[name]
        if not isinstance(view, AudioView):
            raise TypeError(f"view {name!r} is not audio")
        return view


def config_hash(config: Mapping[str, Any]) -> str:
    """A short, stable hash of a JSON-able configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StageOutput:
    """A cue plus derived media views (for example separated stems) for later stages.

    Views are not cached: when a later stage needs them, the stage that provides them
    runs again even if its cue came from the cache.
    """

    cue: Cue
    views: Mapping[str, View]


class Stage(ABC):
    name: str
    needs: tuple[str, ...]
    produces: str
    provides_views: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()
    """Cues used when present (an expert switched off or skipped for a clip is no error)."""
    resources: Resources = Resources()
    batch_size: int = 1
    workers: int = 1

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything the output depends on besides the inputs: backend, params, model version.

        Must be computable before ``setup()``: it keys the cache, so a cached clip never
        loads the model.
        """

    def clip_key(self, clip: Clip) -> dict[str, Any]:
        """What the output depends on from the clip record itself (beyond its media)."""
        return {}

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load models; called once per worker before the first batch."""

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Release what ``setup()`` acquired."""

    @abstractmethod
    def __call__(self, batch: Sequence[StageInput]) -> Sequence[Cue | StageOutput]:
        """One cue (or cue with views) per input, in order. Raising fails the whole batch; the pipeline then
        retries each clip alone, so one bad clip costs only its own result."""

    _config_hash: str | None = None

    def config_hash(self) -> str:
        """Computed once: fingerprints look up package versions and build backend objects,
        and the hash is needed for every clip's cache key and every cue's provenance."""
        if self._config_hash is None:
            self._config_hash = config_hash(self.fingerprint())
        return self._config_hash

    def cue(self, backend: BackendInfo, output: dict[str, Any], elapsed_s: float) -> Cue:
        return Cue(
            expert=self.name,
            backend=backend.name,
            model=backend.model_id,
            output=output,
            provenance=self.provenance(backend.name, backend.model_id, backend.revision, elapsed_s),
        )

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
