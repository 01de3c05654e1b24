"""Reading a finished run folder back: status counts, errors, per-expert facts."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunReport:
    run_dir: Path
    run_info: dict[str, Any]
    total: int
    statuses: Counter[str]
    errors: Counter[str]
    warnings: int
    cues: Counter[str]
    examples: list[dict[str, Any]] = field(default_factory=list)


def read_report(run_dir: Path, examples: int = 5) -> RunReport:
    results = run_dir / "results.jsonl"
    if not results.is_file():
        raise FileNotFoundError(f"no results.jsonl in {run_dir}: is this a fusionaudio run folder?")
    run_json = run_dir / "run.json"
    run_info = json.loads(run_json.read_text(encoding="utf-8")) if run_json.is_file() else {}
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    cues: Counter[str] = Counter()
    warnings = 0
    shown: list[dict[str, Any]] = []
    total = 0
    with results.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            total += 1
            statuses[record["status"]] += 1
            if record.get("error"):
                errors[record["error"]] += 1
            warnings += len(record.get("warnings", []))
            cues.update(record.get("cues", {}).keys())
            if len(shown) < examples:
                shown.append(record)
    return RunReport(run_dir, run_info, total, statuses, errors, warnings, cues, shown)


def cue_brief(name: str, output: dict[str, Any]) -> str:
    """One line a person can read for a cue."""
    if name == "vad":
        return f"speech {output.get('speech_fraction', 0):.0%} ({len(output.get('segments', []))} segments)"
    if name == "tagging":
        tags = output.get("top_tags", [])[:3]
        return ", ".join(f"{t['label']} {t['confidence']:.2f}" for t in tags)
    return json.dumps(output, ensure_ascii=False)[:80]
