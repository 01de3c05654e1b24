"""Exporting a run as a dataset: the paper's instruction format, JSONL or Parquet.

The instruction format is the released FusionAudio one, a JSON list of
``{audio_id, instruction, input, dataset, task, output}``: one "Captioning questions"
record per captioned clip and one "Open-ended questions" record per QA pair. Only clips
with ``status: ok`` are exported unless asked otherwise; filtered, uncertain and failed
clips have no caption to teach.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from fusionaudio.schema.arrow import RESULT_SCHEMA, result_row
from fusionaudio.store.atomic import atomic_write_text

ExportFormat = Literal["instruct", "jsonl", "parquet"]
CAPTION_INSTRUCTION = "Describe the audio in detail."
CAPTION_TASK = "Captioning questions"
QA_TASK = "Open-ended questions"


def iter_results(run_dir: Path, statuses: frozenset[str] | None) -> Iterator[dict[str, Any]]:
    path = run_dir / "results.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no results.jsonl in {run_dir}: is this a fusionaudio run folder?")
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                if statuses is None or record["status"] in statuses:
                    yield record


def instruct_rows(record: dict[str, Any], dataset: str) -> list[dict[str, str]]:
    rows = []
    audio_id = record["source"]
    caption = record.get("caption")
    if caption is not None:
        rows.append(
            {
                "audio_id": audio_id,
                "instruction": CAPTION_INSTRUCTION,
                "input": "",
                "dataset": dataset,
                "task": CAPTION_TASK,
                "output": caption["text"],
            }
        )
    for pair in record.get("qa", []):
        rows.append(
            {
                "audio_id": audio_id,
                "instruction": pair["question"],
                "input": "",
                "dataset": dataset,
                "task": QA_TASK,
                "output": pair["answer"],
            }
        )
    return rows


def export(
    run_dir: Path,
    fmt: ExportFormat,
    out: Path,
    statuses: frozenset[str] | None = frozenset({"ok"}),
    dataset: str = "fusionaudio",
) -> int:
    """Write the export atomically; returns the number of rows written."""
    records = iter_results(run_dir, statuses)
    if fmt == "instruct":
        rows = [row for record in records for row in instruct_rows(record, dataset)]
        atomic_write_text(out, json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        return len(rows)
    if fmt == "jsonl":
        lines = [json.dumps(record, ensure_ascii=False) for record in records]
        atomic_write_text(out, "".join(line + "\n" for line in lines))
        return len(lines)
    table = pa.Table.from_pylist([result_row(r) for r in records], schema=RESULT_SCHEMA)
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(out)
    return int(table.num_rows)
