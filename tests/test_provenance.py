"""Cache keys and provenance by content: a model's weights and a prompt's text, not their
names. Editing a prompt or saving other weights under the same path recomputes that stage
and what follows it, and nothing else."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from fusionaudio.backends import model_identity
from fusionaudio.backends.model_identity import HashMemo, content_identity
from fusionaudio.config import ConfigError, RunConfig, load_config
from fusionaudio.pipeline.run import run
from fusionaudio.stages.experts.prompts import read_prompt_file
from fusionaudio.stages.fusion.prompts import load_fusion_prompt
from tests.openai_server import ServerScript, openai_llm, serve
from tests.real_sounds import clips_of
from tests.tiny_models import tiny_clap


def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_content_identity_follows_the_bytes_and_hashes_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = model_identity.sha256_file
    monkeypatch.setattr(model_identity, "sha256_file", lambda p: calls.append(p) or real(p))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden": 8}')
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    (folder / "README.md").write_text("a model card")
    memo_root = tmp_path / "cache"

    first = content_identity(folder, HashMemo(memo_root))
    assert first.startswith("sha256:") and len(calls) == 2  # the card is not content
    assert content_identity(folder, HashMemo(memo_root)) == first  # a new memo reads the file
    assert len(calls) == 2

    (folder / "README.md").write_text("another card")
    assert content_identity(folder, HashMemo(memo_root)) == first
    # the same size, other bytes: a fine-tune saved over the old weights
    (folder / "model.safetensors").write_bytes(b"\x01" * 64)
    _touch_later(folder / "model.safetensors")
    second = content_identity(folder, HashMemo(memo_root))
    assert second != first and len(calls) == 3
    single = content_identity(folder / "model.safetensors", HashMemo(memo_root))
    assert single.startswith("sha256:") and single != second and len(calls) == 3

    assert content_identity(str(tmp_path / "absent"), HashMemo(memo_root)).startswith("unresolved:")
    assert content_identity("no-such-org/no-such-model", HashMemo(memo_root)) == (
        "unresolved:no-such-org/no-such-model"
    )


def test_a_prompt_is_known_by_its_text() -> None:
    shipped = load_fusion_prompt("fusion_small", 2)
    assert shipped.identity.startswith("fusion_small.v2@sha256:")
    edited = type(shipped)(text=shipped.text + "\nBe brief.", version=shipped.version)
    assert edited.identity != shipped.identity and edited.version == shipped.version


def test_a_missing_prompt_file_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"fusion:\n  prompt_file: {tmp_path / 'missing.txt'}\n")
    with pytest.raises(ConfigError, match=r"fusion\.prompt_file"):
        load_config(config)


def _stage_counts(run_dir: Path) -> dict[str, tuple[int, int]]:
    stages = json.loads((run_dir / "run.json").read_text())["stages"]
    return {name: (s["computed"], s["cached"]) for name, s in stages.items()}


def test_editing_a_prompt_or_swapping_weights_recomputes_that_stage_and_what_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("FUSIONAUDIO_CACHE", str(tmp_path / "user-cache"))
    inputs = tmp_path / "in"
    inputs.mkdir()
    for label in ("dog_bark", "rain"):
        clip = clips_of(label)[0]
        shutil.copy(clip.path, inputs / f"{label}{clip.path.suffix}")
    prompt = tmp_path / "my_fusion.txt"
    prompt.write_text(load_fusion_prompt("fusion_small", 2).text)
    clap = tiny_clap(tmp_path / "clap")

    data = load_config().model_dump(mode="json")
    data["models_dir"] = str(tmp_path / "models")
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging"}
    data["engine"]["kind"] = "sequential"
    data["qa"].update(enabled=True, llm_pairs=0)
    data["quality"].update(enabled=True, scorer="clap_transformers", model=str(clap))
    out = tmp_path / "run"
    with serve(ServerScript(reply=lambda body: "{}")) as url:
        data["fusion"].update(
            enabled=True, max_attempts=1, prompt_file=str(prompt),
            llm=openai_llm(url, timeout_s=2),
        )  # fmt: skip
        config = RunConfig.model_validate(data)
        run(inputs, out, config)
        every = {"vad", "tagging", "fusion", "clap", "qa"}
        assert {n for n, (computed, _) in _stage_counts(out).items() if computed == 2} >= every
        record = json.loads((out / "results.jsonl").read_text().splitlines()[0])
        used = record["caption"]["provenance"]["prompt_version"]
        assert used == read_prompt_file(prompt).identity

        prompt.write_text(prompt.read_text() + "\nName every source you are given.\n")
        run(inputs, out, config)
        counts = _stage_counts(out)
        assert counts["vad"] == counts["tagging"] == (0, 2)
        assert counts["fusion"] == counts["clap"] == counts["qa"] == (2, 0)
        record = json.loads((out / "results.jsonl").read_text().splitlines()[0])
        assert record["caption"]["provenance"]["prompt_version"] != used

        weights = clap / "model.safetensors"
        tensors = load_file(str(weights))
        save_file({k: v + 0.01 if v.is_floating_point() else v for k, v in tensors.items()},
                  str(weights), metadata={"format": "pt"})  # fmt: skip
        run(inputs, out, config)
        counts = _stage_counts(out)
        assert counts["fusion"] == counts["qa"] == (0, 2)
        assert counts["clap"] == (2, 0)
    versions = json.loads((out / "run.json").read_text())["versions"]
    assert versions["transformers"] and versions["torch"]
