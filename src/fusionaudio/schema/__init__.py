"""Typed records that flow through the pipeline; pure data, no numeric libraries."""

from fusionaudio.schema.records import (
    SCHEMA_VERSION,
    Caption,
    Clip,
    ClipResult,
    ClipStatus,
    Cue,
    MediaSummary,
    Provenance,
    QAPair,
    Tag,
    record_from_dict,
)

__all__ = [
    "SCHEMA_VERSION",
    "Caption",
    "Clip",
    "ClipResult",
    "ClipStatus",
    "Cue",
    "MediaSummary",
    "Provenance",
    "QAPair",
    "Tag",
    "record_from_dict",
]
