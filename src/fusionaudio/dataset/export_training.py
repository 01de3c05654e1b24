"""Exports that training code loads unchanged: a Hugging Face dataset folder and WebDataset
tar shards, each row carrying the audio of the clip's analysed window.

Both stream: records are read one at a time from ``results.jsonl`` and written in
row groups / tar members, so memory does not grow with the run. A record whose audio can
no longer be read (source moved, unreadable) is skipped and counted with its reason;
the export goes on.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fusionaudio.dataset.window_audio import WindowAudio, window_flac
from fusionaudio.media.errors import MediaError

# The Hugging Face ``datasets`` feature types of the hf export, stored in the Parquet
# schema metadata: that is how ``load_dataset("parquet")`` knows ``audio`` is an Audio
# column (decoded on access) rather than a struct of bytes.
_HF_FEATURES = {
    "audio": {"_type": "Audio"},
    "clip_id": {"dtype": "string", "_type": "Value"},
    "caption": {"dtype": "string", "_type": "Value"},
    "ambiguities": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
    "qa": [
        {
            "question": {"dtype": "string", "_type": "Value"},
            "answer": {"dtype": "string", "_type": "Value"},
            "type": {"dtype": "string", "_type": "Value"},
        }
    ],
    "clap_score": {"dtype": "float64", "_type": "Value"},
    "tags": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
    "status": {"dtype": "string", "_type": "Value"},
    "source": {"dtype": "string", "_type": "Value"},
    "window_start_s": {"dtype": "float64", "_type": "Value"},
    "window_end_s": {"dtype": "float64", "_type": "Value"},
    "realized_by": {"dtype": "string", "_type": "Value"},
    "provenance_json": {"dtype": "string", "_type": "Value"},
}

HF_SCHEMA = pa.schema(
    [
        pa.field("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        pa.field("clip_id", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("ambiguities", pa.list_(pa.string())),
        pa.field(
            "qa",
            pa.list_(
                pa.struct(
                    [("question", pa.string()), ("answer", pa.string()), ("type", pa.string())]
                )
            ),
        ),
        pa.field("clap_score", pa.float64()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("status", pa.string()),
        pa.field("source", pa.string()),
        pa.field("window_start_s", pa.float64()),
        pa.field("window_end_s", pa.float64()),
        pa.field("realized_by", pa.string()),
        pa.field("provenance_json", pa.string()),
    ],
    metadata={"huggingface": json.dumps({"info": {"features": _HF_FEATURES}})},
)


@dataclass
class TrainingExport:
    """What an export wrote, and what it had to leave out."""

    out: Path
    rows: int = 0
    files: list[Path] = field(default_factory=list)
    bytes_written: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # clip id -> why


def _with_audio(
    records: Iterator[dict[str, Any]], sample_rate: int | None, report: TrainingExport
) -> Iterator[tuple[dict[str, Any], WindowAudio]]:
    for record in records:
        try:
            yield record, window_flac(record, sample_rate)
        except (MediaError, OSError, ValueError) as exc:
            report.skipped[record["clip_id"]] = f"audio unreadable: {exc}"


def _tags(record: dict[str, Any]) -> list[str]:
    tagging = (record.get("cues") or {}).get("tagging") or {}
    return [str(t["label"]) for t in (tagging.get("output") or {}).get("top_tags", [])]


def _row_fields(record: dict[str, Any], audio: WindowAudio) -> dict[str, Any]:
    caption = record.get("caption") or {}
    return {
        "clip_id": record["clip_id"],
        "caption": caption.get("text"),
        "ambiguities": list(caption.get("ambiguities") or []),
        "qa": [
            {"question": p["question"], "answer": p["answer"], "type": p.get("type")}
            for p in record.get("qa") or []
        ],
        "clap_score": (record.get("scores") or {}).get("clap"),
        "tags": _tags(record),
        "status": record["status"],
        "source": record["source"],
        "window_start_s": audio.start_s,
        "window_end_s": audio.end_s,
        "realized_by": (caption.get("provenance") or {}).get("realized_by"),
        "provenance_json": json.dumps(record.get("provenance") or {}, ensure_ascii=False),
    }


def _safe_key(clip_id: str, used: set[str]) -> str:
    """A clip id as a file-name stem: no dots (WebDataset splits keys at the first dot)."""
    key = re.sub(r"[^A-Za-z0-9_-]+", "_", clip_id).strip("_") or "clip"
    candidate, n = key, 1
    while candidate in used:
        n += 1
        candidate = f"{key}_{n}"
    used.add(candidate)
    return candidate


def export_hf(
    records: Iterator[dict[str, Any]],
    out: Path,
    rows_per_shard: int = 1000,
    sample_rate: int | None = None,
    card: Callable[[TrainingExport], str] | None = None,
) -> TrainingExport:
    """A dataset folder: ``data/train-NNNNN.parquet`` shards and a ``README.md`` card,
    written by ``card`` once every row is in (it may count what the stream held)."""
    report = TrainingExport(out=out)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    writer: pq.ParquetWriter | None = None
    in_shard = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch and writer is not None:
            writer.write_table(pa.Table.from_pylist(batch, schema=HF_SCHEMA))
            batch.clear()

    for record, audio in _with_audio(records, sample_rate, report):
        if writer is None or in_shard >= rows_per_shard:
            flush()
            if writer is not None:
                writer.close()
            path = tmp / "data" / f"train-{len(report.files):05d}.parquet"
            report.files.append(path)
            writer = pq.ParquetWriter(str(path), HF_SCHEMA)
            in_shard = 0
        name = f"{_safe_key(record['clip_id'], set())}.flac"
        batch.append({"audio": {"bytes": audio.flac, "path": name}, **_row_fields(record, audio)})
        in_shard += 1
        report.rows += 1
        if len(batch) >= 64:  # one row group holds at most 64 clips' audio
            flush()
    flush()
    if writer is not None:
        writer.close()
    if card is not None:
        (tmp / "README.md").write_text(card(report), encoding="utf-8")
    return _publish(tmp, out, report, "data/*.parquet")


def export_webdataset(
    records: Iterator[dict[str, Any]],
    out: Path,
    rows_per_shard: int = 1000,
    sample_rate: int | None = None,
) -> TrainingExport:
    """Tar shards ``shard-NNNNNN.tar`` of ``KEY.flac`` + ``KEY.json`` (the caption record),
    written by the ``webdataset`` library (the ``export`` extra)."""
    try:
        import webdataset as wds
    except ImportError as exc:
        needs = "the webdataset export needs the webdataset package"
        raise ModuleNotFoundError(
            f"{needs}; install it with: pip install 'fusionaudio[export]'"
        ) from exc
    report = TrainingExport(out=out)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    used: set[str] = set()
    with wds.ShardWriter(str(tmp / "shard-%06d.tar"), maxcount=rows_per_shard, verbose=0) as sink:
        for record, audio in _with_audio(records, sample_rate, report):
            meta = {**_row_fields(record, audio), "sample_rate": audio.sample_rate}
            sink.write(
                {"__key__": _safe_key(record["clip_id"], used), "flac": audio.flac, "json": meta}
            )
            report.rows += 1
    return _publish(tmp, out, report, "shard-*.tar")


def _publish(tmp: Path, out: Path, report: TrainingExport, files: str) -> TrainingExport:
    """Put the finished folder in place of ``out`` and record what it holds."""
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    report.files = sorted(out.glob(files))
    report.bytes_written = sum(p.stat().st_size for p in report.files)
    return report
