"""``fusionaudio report``: a run's statistics as ``report.json`` and one self-contained HTML
page (``stats.py`` gathers, ``html.py`` renders)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionaudio.dataset.export import iter_results
from fusionaudio.report.html import render
from fusionaudio.report.stats import RunStats
from fusionaudio.store.atomic import atomic_write_text


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    summary: dict[str, Any]


def _threshold(run: dict[str, Any]) -> float | None:
    quality = (run.get("config") or {}).get("quality") or {}
    thresholds = quality.get("thresholds") or {}
    value = thresholds.get(quality.get("scorer"))
    return float(value) if isinstance(value, int | float) else None


def build_report(
    run_dir: Path,
    out: Path | None = None,
    gallery: int = 12,
    seed: int = 0,
    embed_audio: bool = True,
) -> ReportFiles:
    """Stream the run's records once, then write ``out`` (HTML) and its ``.json`` twin."""
    out = out or run_dir / "report.html"
    run_path = run_dir / "run.json"
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else {}
    stats = RunStats(gallery_size=gallery, seed=seed)
    for record in iter_results(run_dir, None):
        stats.add(record)
    summary = stats.summary()
    summary["run"] = {
        key: run.get(key) for key in ("input", "pipeline_hash", "wall_s", "clips_per_s", "counts")
    }
    summary["stages"] = run.get("stages") or {}
    threshold = _threshold(run)
    summary["scores"]["threshold"] = threshold
    random_items, lowest_items = stats.gallery()
    page = render(
        summary,
        run,
        stats.scores,
        threshold,
        random_items,
        lowest_items,
        out,
        embed_audio,
    )
    json_path = out.with_suffix(".json")
    atomic_write_text(out, page)
    atomic_write_text(json_path, json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return ReportFiles(out, json_path, summary)
