"""Inputs stay where they are allowed to be: a manifest's relative paths inside its folder,
a folder's files inside the folder (no ``..``, no symlink leading out), everything inside
``inputs.root`` when it is set. A refused file is that clip's error; the run goes on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from fusionaudio.cli import cli
from fusionaudio.config import RunConfig
from fusionaudio.pipeline.run import run
from tests.media_factory import EXAMPLES


def _with(config: RunConfig, **inputs: object) -> RunConfig:
    data = config.model_dump()
    data["inputs"] = {**data["inputs"], **inputs}
    return RunConfig.model_validate(data)


def _records(run_dir: Path) -> dict[str, dict]:
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return {r["clip_id"]: r for r in map(json.loads, lines)}


def _layout(tmp_path: Path) -> tuple[Path, Path]:
    """m/ holds a manifest, a clip and a symlink to a clip outside m/."""
    outside = tmp_path / "secret.wav"
    shutil.copy(EXAMPLES / "speech_fox.wav", outside)
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(EXAMPLES / "speech_fox.wav", folder / "inside.wav")
    (folder / "link.wav").symlink_to(outside)
    manifest = folder / "clips.csv"
    manifest.write_text(
        "path,clip_id\ninside.wav,inside\n../secret.wav,climbs\nlink.wav,link\n"
        f"{outside},absolute\n"
    )
    return folder, manifest


def test_a_manifest_cannot_reach_out_of_its_folder(tmp_path: Path, config: RunConfig) -> None:
    _, manifest = _layout(tmp_path)
    run(manifest, tmp_path / "run", config)
    records = _records(tmp_path / "run")
    assert records["inside"]["status"] == "ok"
    for clip in ("climbs", "link"):
        assert records[clip]["status"] == "error"
        assert "outside the allowed folder" in records[clip]["error"], records[clip]["error"]
        assert records[clip]["media"] is None  # never opened
    assert records["absolute"]["status"] == "ok"  # an absolute path names itself
    allowed = _with(config, allow_outside_root=True)
    run(manifest, tmp_path / "run2", allowed)
    assert all(r["status"] == "ok" for r in _records(tmp_path / "run2").values())


def test_inputs_root_fences_absolute_paths_too(tmp_path: Path, config: RunConfig) -> None:
    folder, manifest = _layout(tmp_path)
    fenced = _with(config, root=folder, allow_outside_root=True)
    run(manifest, tmp_path / "run", fenced)
    records = _records(tmp_path / "run")
    assert records["inside"]["status"] == "ok"
    for clip in ("climbs", "link", "absolute"):
        assert "outside the allowed folder" in records[clip]["error"]
    result = CliRunner().invoke(
        cli,
        ["run", str(manifest), "--out", str(tmp_path / "cli"), "--root", str(folder), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert _records(tmp_path / "cli")["absolute"]["status"] == "error"


def test_a_folder_walk_neither_follows_nor_reads_links_out(
    tmp_path: Path, config: RunConfig
) -> None:
    folder, manifest = _layout(tmp_path)
    manifest.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(EXAMPLES / "speech_fox.wav", elsewhere / "deep.wav")
    (folder / "linked_dir").symlink_to(elsewhere, target_is_directory=True)
    run(folder, tmp_path / "run", config)
    records = _records(tmp_path / "run")
    assert sorted(records) == ["inside.wav", "link.wav"]  # linked_dir/ is not walked
    assert records["inside.wav"]["status"] == "ok"
    assert "outside the allowed folder" in records["link.wav"]["error"]
