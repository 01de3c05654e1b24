from __future__ import annotations

import json

import pyarrow as pa
import pytest

from fusionaudio.schema import (
    Caption,
    Clip,
    ClipResult,
    Cue,
    MediaSummary,
    Provenance,
    QAPair,
    Tag,
    record_from_dict,
)
from fusionaudio.schema.arrow import RESULT_SCHEMA, result_row

PROV = Provenance("vad", "silero_onnx", "silero", "sha256:abc", "cfg1", 0.01)


def _full_result() -> ClipResult:
    return ClipResult(
        clip_id="a/b.wav",
        source="/data/a/b.wav",
        status="ok",
        error=None,
        duration_s=7.2,
        media=MediaSummary(
            "hash", "wav", 7.2, 16000, 1, False, 0.0, 7.2, False, -20.0, -3.0, False, "soundfile"
        ),
        cues={"vad": Cue("vad", "silero_onnx", "silero", {"speech_fraction": 0.9}, PROV)},
        caption=Caption("A man speaks.", ("gender unclear",), PROV),
        qa=[QAPair("Who speaks?", "A man.", "acoustic_analysis", PROV)],
        scores={"clap": 0.3},
        warnings=["w"],
        provenance={"pipeline_hash": "p"},
    )


@pytest.mark.parametrize(
    "record",
    [
        Clip("x", "/x.wav", (Tag("Speech", 0.9), Tag("Music")), 10.0, 20.0, 1),
        Cue("tagging", "yamnet_onnx", "yamnet", {"top_tags": []}, PROV),
        Caption("A dog barks twice.", (), PROV),
        QAPair("What barks?", "A dog.", "cause", PROV),
        _full_result(),
    ],
)
def test_round_trip_through_json(record: object) -> None:
    data = json.loads(json.dumps(record.to_dict()))  # type: ignore[attr-defined]
    assert data["schema_version"] == 1
    assert record_from_dict(data) == record


def test_reader_dispatches_on_kind_not_keys() -> None:
    data = Caption("x", (), PROV).to_dict()
    data["kind"] = "qa_pair"
    with pytest.raises(KeyError):
        record_from_dict(data)
    with pytest.raises(ValueError, match="unknown record kind"):
        record_from_dict({"text": "x"})


def test_unknown_status_is_rejected() -> None:
    data = _full_result().to_dict()
    data["status"] = "great"
    with pytest.raises(ValueError, match="unknown clip status"):
        ClipResult.from_dict(data)


def test_arrow_row_matches_schema() -> None:
    table = pa.Table.from_pylist([result_row(_full_result().to_dict())], schema=RESULT_SCHEMA)
    row = table.to_pylist()[0]
    assert row["cues"][0]["expert"] == "vad"
    assert json.loads(row["cues"][0]["output_json"]) == {"speech_fraction": 0.9}
    assert row["caption"]["text"] == "A man speaks."
    assert row["qa"][0]["type"] == "acoustic_analysis"
    assert dict(row["scores"]) == {"clap": 0.3}
