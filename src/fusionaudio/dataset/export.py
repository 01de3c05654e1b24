"""Exporting a run as a dataset: the paper's instruction format, JSONL, Parquet, a Hugging
Face dataset folder or WebDataset shards (the last two in ``export_training.py``).

The instruction format is the released FusionAudio one, a JSON list of
``{audio_id, instruction, input, dataset, task, output}``, plus ``start_s``/``end_s``: the
window of ``audio_id`` that the caption describes. One "Captioning questions" record per
captioned clip and one "Open-ended questions" record per QA pair. Only clips with
``status: ok`` are exported unless asked otherwise; filtered, uncertain and failed clips
have no caption to teach. Every format streams: records are read and written one at a
time, so memory does not grow with the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from fusionaudio.dataset.export_training import TrainingExport, export_hf, export_webdataset
from fusionaudio.dataset.window_audio import record_window
from fusionaudio.schema.arrow import RESULT_SCHEMA, result_row

ExportFormat = Literal["instruct", "jsonl", "parquet", "hf", "webdataset"]
EXPORT_FORMATS: tuple[str, ...] = ("instruct", "jsonl", "parquet", "hf", "webdataset")
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


def instruct_rows(record: dict[str, Any], dataset: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    audio_id = record["source"]
    start_s, end_s = record_window(record)
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
                "start_s": start_s,
                "end_s": end_s,
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
                "start_s": start_s,
                "end_s": end_s,
            }
        )
    return rows


def export(
    run_dir: Path,
    fmt: ExportFormat,
    out: Path,
    statuses: frozenset[str] | None = frozenset({"ok"}),
    dataset: str = "fusionaudio",
    rows_per_shard: int = 1000,
    sample_rate: int | None = None,
) -> TrainingExport:
    """Write the export (atomically: complete or absent) and say what it holds."""
    if fmt == "hf":
        counts: dict[str, int] = {}
        return export_hf(
            _counted(iter_results(run_dir, None), counts, statuses),
            out,
            rows_per_shard,
            sample_rate,
            lambda report: dataset_card(run_dir, dataset, counts, report, statuses, sample_rate),
        )
    records = iter_results(run_dir, statuses)
    if fmt == "webdataset":
        return export_webdataset(records, out, rows_per_shard, sample_rate)
    report = TrainingExport(out=out, files=[out])
    tmp = out.with_name(f".{out.name}.partial")
    if fmt == "parquet":
        writer = pq.ParquetWriter(str(tmp), RESULT_SCHEMA)
        try:
            group: list[dict[str, Any]] = []
            for record in records:
                group.append(result_row(record))
                report.rows += 1
                if len(group) >= 1024:
                    writer.write_table(pa.Table.from_pylist(group, schema=RESULT_SCHEMA))
                    group = []
            if group:
                writer.write_table(pa.Table.from_pylist(group, schema=RESULT_SCHEMA))
        finally:
            writer.close()
    else:
        with tmp.open("w", encoding="utf-8") as f:
            if fmt == "instruct":
                f.write("[")
                for record in records:
                    for row in instruct_rows(record, dataset):
                        f.write(
                            ("\n" if report.rows == 0 else ",\n")
                            + json.dumps(row, ensure_ascii=False)
                        )
                        report.rows += 1
                f.write("\n]\n")
            else:
                for record in records:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
                    report.rows += 1
    tmp.replace(out)
    report.bytes_written = out.stat().st_size
    return report


def _counted(
    records: Iterator[dict[str, Any]], counts: dict[str, int], statuses: frozenset[str] | None
) -> Iterator[dict[str, Any]]:
    """The records whose status is wanted, counting every status on the way (one pass)."""
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        if statuses is None or record["status"] in statuses:
            yield record


def dataset_card(
    run_dir: Path,
    dataset: str,
    counts: dict[str, int],
    report: TrainingExport,
    statuses: frozenset[str] | None,
    sample_rate: int | None,
) -> str:
    """The Hugging Face dataset card: what the rows are, how they were made, and counts."""
    run_path = run_dir / "run.json"
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else {}
    config = run.get("config", {})
    kept = "every status" if statuses is None else ", ".join(sorted(statuses))
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data/train-*.parquet",
        "task_categories:",
        "- audio-classification",
        "- text-to-audio",
        "---",
        "",
        f"# {dataset}",
        "",
        "Audio captions made by fusionaudio (a FusionAudio-style pipeline: expert models, then",
        "an LLM fusing their cues under explicit trust rules, with a caption plan decided in",
        "code). Each row is one clip's analysed window (`audio`, FLAC"
        + (f" resampled to {sample_rate} Hz" if sample_rate else " at the source's rate")
        + "), its caption, ambiguities, QA pairs, CLAP-style score, AudioSet tags and provenance.",
        "",
        "## Counts",
        "",
        f"- rows: {report.rows} (statuses exported: {kept})",
        f"- run: {sum(counts.values())} clips: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        f"- clips whose audio could not be read at export time: {len(report.skipped)}",
        f"- shards: {len(report.files)}",
        "",
        "## How it was made",
        "",
        f"- fusionaudio {run.get('versions', {}).get('fusionaudio', '?')}, "
        f"preset `{config.get('preset', '?')}`, pipeline hash `{run.get('pipeline_hash', '?')}`",
        "- models: "
        + ", ".join(
            f"{name}: {info.get('model_id', info) if isinstance(info, dict) else info}"
            for name, info in sorted(run.get("models", {}).items())
        ),
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("parquet", data_files="data/train-*.parquet", split="train")',
        "```",
        "",
        "## Configuration",
        "",
        "The run's configuration (`run.json` of the run folder holds it too):",
        "",
        "```yaml",
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
