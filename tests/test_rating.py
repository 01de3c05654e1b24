"""Human ratings: agreement statistics on hand-checked cases, and the rating page driven by a
scripted rater in headless Chromium; its exported CSV calibrates as it is."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fusionaudio.agreement import Rating, agreement, cohen_kappa, combine, fleiss_kappa
from fusionaudio.cli import cli


def test_kappas_on_hand_worked_cases() -> None:
    # observed 3/4, chance 1/2 -> 0.5
    assert cohen_kappa([True, True, False, False], [True, False, False, False]) == 0.5
    labels = np.array([[1, 1, 1], [0, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)
    # items agree 1, 1, 1/3, 1/3 (mean 2/3); chance 1/2 -> 1/3
    assert fleiss_kappa(labels) == pytest.approx(1 / 3)
    assert fleiss_kappa(np.array([[1, 1], [0, 0], [1, 1]], dtype=bool)) == pytest.approx(1.0)


def test_agreement_and_combining_raters() -> None:
    same = [
        Rating(c, r, d, s)
        for r in ("ann", "bob")
        for c, d, s in (("a", 1, 1), ("b", 2, 4), ("c", 3, 5), ("d", 2, 2))
    ]
    result = agreement(same)
    assert result.raters == ["ann", "bob"] and result.clips_all_rated == 4
    assert result.alpha_hallucination == pytest.approx(1.0)
    assert result.alpha_detail == pytest.approx(1.0) and result.cohen_kappa == pytest.approx(1.0)
    split = [
        Rating("a", "ann", None, 1),
        Rating("a", "bob", None, 3),
        Rating("a", "cy", None, 2),
        Rating("b", "ann", None, 3),
        Rating("b", "bob", None, 2),
    ]
    assert combine(split, "mean") == {"a": True, "b": False}  # means 2.0 and 2.5
    assert combine(split, "majority") == {"a": True, "b": True}  # 2 of 3; a tie flags


def _rate(page_url: str, download_dir: Path, rater: str, scores: list[int]) -> Path:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: run ./scripts/setup.sh (it installs it)")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_url)
        items = page.locator(".item")
        n = items.count()
        page.fill("#rater", rater)
        for i in range(n):
            clip = items.nth(i).get_attribute("id")
            assert clip is not None
            score = scores[i % len(scores)]
            items.nth(i).locator(f"input[data-scale=score][value='{score}']").check()
            items.nth(i).locator("input[data-scale=detail][value='2']").check()
        items.nth(0).locator("textarea").fill('too vague, "engine"?')
        page.reload()  # progress survives: it lives in local storage
        assert page.inner_text("#progress") == f"rated {n} of {n}"
        assert page.locator("#rater").input_value() == rater
        with page.expect_download() as info:
            page.click("#export")
        out = download_dir / f"{rater}.csv"
        info.value.save_as(out)
        browser.close()
    assert not errors, errors
    return out


def test_a_scripted_rater_fills_the_page_and_the_csv_calibrates(
    captioned_run: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli, ["rate", str(captioned_run), "--out", str(tmp_path / "page"), "--sample", "5"]
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "page" / "index.html").as_uri()
    first = _rate(page, tmp_path, "ann", [1, 5, 2, 4, 5])
    rows = list(csv.DictReader(first.open()))
    assert len(rows) == 5 and {r["rater"] for r in rows} == {"ann"}
    assert [r["score"] for r in rows] == ["1", "5", "2", "4", "5"]
    assert rows[0]["comment"] == 'too vague, "engine"?' and rows[0]["detail"] == "2"
    calibrated = CliRunner().invoke(cli, ["calibrate", str(captioned_run), "--ratings", str(first)])
    assert calibrated.exit_code == 0, calibrated.output
    assert "5 rated clips with a score, 2 notable hallucinations" in calibrated.output
    second = _rate(page, tmp_path, "bob", [1, 5, 5, 4, 5])
    both = CliRunner().invoke(cli, ["agreement", str(first), str(second)])
    assert both.exit_code == 0, both.output
    assert "2 raters (ann, bob), 5 clips, 5 rated by all" in both.output
    assert "Cohen's kappa 0.545" in both.output  # labels 1,0,1,0,0 vs 1,0,0,0,0
    two = CliRunner().invoke(
        cli,
        [
            "calibrate",
            str(captioned_run),
            "--ratings",
            str(first),
            "--ratings",
            str(second),
            "--combine",
            "majority",
        ],
    )
    assert two.exit_code == 0 and "(2 raters, majority)" in two.output, two.output
    assert "2 notable hallucinations" in two.output  # the 2 vs 5 tie flags
