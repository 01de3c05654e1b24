"""Building the expert stages from the config and checking that every need is met."""

from __future__ import annotations

from fusionaudio.config import RunConfig
from fusionaudio.stages.base import MEDIA_VIEWS, VIEWS, Stage
from fusionaudio.stages.experts.tagging import TaggingStage
from fusionaudio.stages.experts.vad import VadStage


class GraphError(Exception):
    """The enabled stages cannot run together (a need nobody produces)."""


def build_stages(config: RunConfig) -> list[Stage]:
    experts = config.experts
    stages: list[Stage] = []
    if experts.vad.enabled:
        vad = experts.vad
        stages.append(
            VadStage(
                backend=vad.backend,
                threshold=vad.threshold,
                min_speech_s=vad.min_speech_s,
                min_silence_s=vad.min_silence_s,
                batch_size=vad.batch_size,
                workers=vad.workers,
                threads=vad.threads,
            )
        )
    if experts.tagging.enabled:
        tag = experts.tagging
        stages.append(
            TaggingStage(
                models_dir=config.models_dir,
                backend=tag.backend,
                top_k=tag.top_k,
                timeline_top_k=tag.timeline_top_k,
                timeline_min_confidence=tag.timeline_min_confidence,
                posterior_min=tag.posterior_min,
                batch_size=tag.batch_size,
                workers=tag.workers,
                threads=tag.threads,
            )
        )
    check_graph(stages)
    return stages


def check_graph(stages: list[Stage]) -> None:
    """Every need is a media view, or a cue or view of an earlier stage; names are unique."""
    produced: set[str] = set()
    derived: set[str] = set()
    for stage in stages:
        if stage.produces in produced:
            raise GraphError(f"two stages produce {stage.produces!r}")
        for need in stage.needs:
            if need not in MEDIA_VIEWS and need not in produced and need not in derived:
                raise GraphError(
                    f"stage {stage.name!r} needs {need!r}, which no earlier enabled stage produces"
                )
        produced.add(stage.produces)
        derived.update(stage.provides_views)


def cue_needs(stage: Stage) -> tuple[str, ...]:
    return tuple(n for n in stage.needs if n not in VIEWS)


def view_needs(stage: Stage) -> tuple[str, ...]:
    return tuple(n for n in stage.needs if n in VIEWS)


def media_view_needs(stage: Stage) -> tuple[str, ...]:
    """The views the loader must decode (derived views come from stages)."""
    return tuple(n for n in stage.needs if n in MEDIA_VIEWS)
