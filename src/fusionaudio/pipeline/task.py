"""The working record of one clip while it moves through the steps.

Unlike the output records it is mutable and holds decoded media; the sink turns it into
a ClipResult and the media is dropped as soon as no later stage needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fusionaudio.schema import Clip, Cue, MediaSummary
from fusionaudio.stages.base import View


@dataclass(frozen=True)
class SourceStat:
    size: int
    mtime_ns: int


@dataclass
class ClipTask:
    clip: Clip
    stat: SourceStat | None = None
    media: MediaSummary | None = None
    stage_keys: dict[str, str] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    cues: dict[str, Cue] = field(default_factory=dict)
    cached: set[str] = field(default_factory=set)
    must_run: set[str] = field(default_factory=set)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
