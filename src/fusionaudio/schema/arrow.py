"""The Arrow schema of ``results.parquet``.

Expert outputs differ in shape from expert to expert, so each cue's ``output`` is kept
as a JSON string; everything a user filters or joins on is a typed column.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

_PROVENANCE_JSON = pa.string()

RESULT_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field(
            "media",
            pa.struct(
                [
                    ("media_hash", pa.string()),
                    ("container", pa.string()),
                    ("source_duration_s", pa.float64()),
                    ("source_sample_rate", pa.int64()),
                    ("source_channels", pa.int64()),
                    ("has_video", pa.bool_()),
                    ("window_start_s", pa.float64()),
                    ("window_end_s", pa.float64()),
                    ("truncated", pa.bool_()),
                    ("rms_dbfs", pa.float64()),
                    ("peak_dbfs", pa.float64()),
                    ("silent", pa.bool_()),
                    ("decoder", pa.string()),
                ]
            ),
        ),
        pa.field(
            "cues",
            pa.list_(
                pa.struct(
                    [
                        ("expert", pa.string()),
                        ("backend", pa.string()),
                        ("model", pa.string()),
                        ("output_json", pa.string()),
                        ("provenance_json", _PROVENANCE_JSON),
                    ]
                )
            ),
        ),
        pa.field(
            "caption",
            pa.struct(
                [
                    ("text", pa.string()),
                    ("ambiguities", pa.list_(pa.string())),
                    ("provenance_json", _PROVENANCE_JSON),
                ]
            ),
        ),
        pa.field(
            "qa",
            pa.list_(
                pa.struct(
                    [
                        ("question", pa.string()),
                        ("answer", pa.string()),
                        ("type", pa.string()),
                        ("facts", pa.list_(pa.string())),
                        ("provenance_json", _PROVENANCE_JSON),
                    ]
                )
            ),
        ),
        pa.field("scores", pa.map_(pa.string(), pa.float64())),
        pa.field("warnings", pa.list_(pa.string())),
        pa.field("provenance_json", pa.string()),
    ]
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def result_row(record: dict[str, Any]) -> dict[str, Any]:
    """Turn one serialised ClipResult into a row of RESULT_SCHEMA."""
    caption = record.get("caption")
    return {
        "clip_id": record["clip_id"],
        "source": record["source"],
        "status": record["status"],
        "error": record.get("error"),
        "duration_s": record.get("duration_s"),
        "media": record.get("media"),
        "cues": [
            {
                "expert": name,
                "backend": cue["backend"],
                "model": cue["model"],
                "output_json": _dumps(cue["output"]),
                "provenance_json": _dumps(cue["provenance"]),
            }
            for name, cue in record.get("cues", {}).items()
        ],
        "caption": None
        if caption is None
        else {
            "text": caption["text"],
            "ambiguities": caption.get("ambiguities", []),
            "provenance_json": _dumps(caption["provenance"]),
        },
        "qa": [
            {
                "question": qa["question"],
                "answer": qa["answer"],
                "type": qa["type"],
                "facts": qa.get("facts", []),
                "provenance_json": _dumps(qa["provenance"]),
            }
            for qa in record.get("qa", [])
        ],
        "scores": list(record.get("scores", {}).items()),
        "warnings": record.get("warnings", []),
        "provenance_json": _dumps(record.get("provenance", {})),
    }
