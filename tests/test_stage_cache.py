"""The stage cache: few files for many entries, one writer per segment, durable commits,
and the earlier one-file-per-entry layout imported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from fusionaudio.store.stage_cache import MAIN, StageCache

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fusionaudio.store.stage_cache import StageCache
    cache = StageCache(Path(sys.argv[1]))
    name, count, hang = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "hang"
    for i in range(count):
        cache.put("tagging", f"{name}-{i}", {"writer": name, "i": i, "pad": "x" * 200})
        if i % 50 == 49:
            cache.commit()
    cache.commit()
    if hang:
        cache.put("tagging", f"{name}-uncommitted", {"lost": True})
        print("ready", flush=True)
        time.sleep(60)
    """
)


def _writer(root: Path, name: str, count: int, hang: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), name, str(count), "hang" if hang else "-"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_concurrent_writers_then_compaction_into_one_file(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    writers = [_writer(root, name, 300) for name in ("a", "b", "c")]
    assert all(w.wait(timeout=120) == 0 for w in writers)
    assert len(list(root.glob("cues-*.sqlite"))) == 3

    reader = StageCache(root)
    wanted = [("tagging", f"{n}-{i}") for n in "abc" for i in range(300)]
    found = reader.get_many([*wanted, ("tagging", "nope")])
    assert len(found) == 900 and found[("tagging", "b-7")]["i"] == 7
    assert reader.count("tagging") == 900

    assert reader.compact() == 900
    assert [p.name for p in root.iterdir()] == [MAIN]
    again = StageCache(root)
    assert again.get("tagging", "c-299") == {"writer": "c", "i": 299, "pad": "x" * 200}
    assert again.get("vad", "c-299") is None


def test_a_killed_writer_loses_only_its_uncommitted_entries(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    writer = _writer(root, "k", 120, hang=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    cache = StageCache(root)
    assert cache.count("tagging") == 120
    assert cache.get("tagging", "k-uncommitted") is None
    cache.compact()
    assert StageCache(root).get("tagging", "k-119") is not None


def test_the_earlier_json_layout_is_imported(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    for stage, key in (("vad", "ab12"), ("tagging", "cd34"), ("_media", "ef56")):
        path = root / stage / key[:2] / f"{key}.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"stage": stage}), encoding="utf-8")
    torn = root / "vad" / "zz" / "zz99.json"
    torn.parent.mkdir()
    torn.write_text("{not json", encoding="utf-8")
    started = time.perf_counter()
    assert StageCache(root).compact() == 3
    assert time.perf_counter() - started < 30
    cache = StageCache(root)
    assert cache.get("vad", "ab12") == {"stage": "vad"}
    assert cache.get("_media", "ef56") == {"stage": "_media"}
    assert cache.get("vad", "zz99") is None
    assert sorted(p.name for p in root.iterdir()) == [MAIN]
