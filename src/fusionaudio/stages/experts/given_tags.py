"""Tags supplied with a clip (for example AudioSet labels with confidences in the
manifest) pass through as the paper's "Audio Tags" cue, the most trusted input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fusionaudio.schema import Clip, Cue
from fusionaudio.stages.base import Stage, StageInput
from fusionaudio.stages.settings import BuildContext, RoleConfig


class Manifest:
    name = "manifest"
    model_id = "human or upstream labels from the manifest"
    revision = "n/a"


class GivenTagsConfig(RoleConfig):
    def build(self, context: BuildContext) -> GivenTagsStage:
        return GivenTagsStage()


class GivenTagsStage(Stage):
    name = "given_tags"
    needs = ()
    produces = "given_tags"
    # as the cheap CPU steps take: the local engine sizes its window of clips in flight
    # from batch sizes, and a larger batch saves nothing on a step this cheap
    batch_size = 8

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "manifest"}

    def clip_key(self, clip: Clip) -> dict[str, Any]:
        return {"tags": [t.to_dict() for t in clip.tags]}

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        return [
            self.cue(
                Manifest(),
                {
                    "tags": [t.to_dict() for t in item.clip.tags],
                    "formatted": ", ".join(
                        t.label if t.confidence is None else f"{t.label}({t.confidence:.0%})"
                        for t in item.clip.tags
                    ),
                },
                0.0,
            )
            for item in batch
        ]
