"""``fusionaudio report``: the statistics on a real run, and the page opened in a real browser
(headless Chromium, as CI runs it) with every plot rendered and no script error."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from fusionaudio.cli import cli
from fusionaudio.report.stats import RunStats

ARTEFACTS = Path(os.environ.get("FUSIONAUDIO_TEST_ARTEFACTS", "test-artefacts"))


def _record(clip_id: str, text: str, score: float) -> dict:
    return {
        "clip_id": clip_id,
        "status": "ok",
        "caption": {"text": text, "provenance": {"realized_by": "template"}},
        "scores": {"clap": score},
        "warnings": [],
        "cues": {},
    }


def test_near_duplicates_pair_different_clips_with_the_same_caption() -> None:
    stats = RunStats(gallery_size=2, seed=1)
    stats.add(_record("a", "A dog barks three times, then a car passes slowly.", 0.5))
    stats.add(_record("b", "A dog barks three times, then a car passes slowly.", 0.4))
    stats.add(_record("c", "Rain falls steadily on a tin roof while thunder rumbles.", 0.3))
    stats.add(_record("d", "A woman speaks in French at a slow pace.", 0.2))
    pairs = stats.near_duplicates()
    assert [(p["a"], p["b"]) for p in pairs] == [("a", "b")]
    summary = stats.summary()
    assert summary["diversity"]["distinct_1"] < 1.0
    random_items, lowest = stats.gallery()
    assert [i.clip_id for i in lowest] == ["d", "c"]  # lowest score first
    assert len(random_items) == 2


def test_the_random_gallery_is_the_same_for_the_same_seed() -> None:
    def pick(seed: int) -> list[str]:
        stats = RunStats(gallery_size=3, seed=seed)
        for i in range(200):
            stats.add(_record(f"clip{i}", f"caption number {i} of many", 0.5))
        return [item.clip_id for item in stats.gallery()[0]]

    assert pick(7) == pick(7)
    assert len(set(pick(7))) == 3


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: run ./scripts/setup.sh (it installs it)")
    return path


def test_report_figures_on_a_real_run(captioned_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["report", str(captioned_run), "--out", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r.json").read_text())
    records = (captioned_run / "results.jsonl").read_text().splitlines()
    assert summary["records"] == len(records) == 9
    assert sum(summary["statuses"].values()) == 9
    assert summary["statuses"]["error"] == 1 and summary["reasons"]["error"]
    assert summary["captions"] >= 5
    assert summary["realized_by"] == {"template": summary["captions"]}
    assert sum(summary["mentions_per_caption"]["sources"].values()) == summary["captions"]
    assert summary["modality_usage"]["sound events"] >= 3
    assert summary["modality_usage"]["speech"] >= 1  # the fox sentence's voice fact
    assert summary["scores"]["count"] == summary["captions"]
    assert "caption realised from the plan by code" in summary["warnings"]


def test_report_renders_in_headless_chromium(captioned_run: Path, tmp_path: Path) -> None:
    from fusionaudio.report import build_report

    files = build_report(captioned_run, tmp_path / "report.html", gallery=4)
    page = files.html.read_text()
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing from the network
    browser = _chromium()
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000"]
    dom = subprocess.run(
        [*common, "--dump-dom", files.html.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert attributes.get("checked") == "yes", attributes
    assert int(attributes["images"]) >= 8  # one image per plot
    assert attributes["broken-images"] == "0" and attributes["errors"] == "0", attributes
    assert dom.count("<audio") >= 4  # the galleries' players
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = (ARTEFACTS / "report.png").resolve()
    subprocess.run(
        [*common, "--window-size=1280,2400", f"--screenshot={shot}", files.html.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 20_000
