"""Each batched expert stage on this machine: clips per second at its default batch size
(and at 4 where the CPU default is 1) against batch size 1, measured in the same run on
the same real recordings (one clip per class from ../shared/data/sounds; for ASR every
recording with speech, its voice-activity cue computed first, as in a run).

Usage: python benchmarks/bench_batching.py [--clips 24] [--stages vad,tagging,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.schema import Clip
from fusionaudio.stages.base import AUDIO_16K_MONO, AUDIO_44K_STEREO, Stage, StageInput
from fusionaudio.stages.experts.asr import AsrConfig
from fusionaudio.stages.experts.separation import SeparationConfig
from fusionaudio.stages.experts.tagging import TaggingConfig
from fusionaudio.stages.experts.vad import VadConfig
from fusionaudio.stages.settings import BuildContext

SOUNDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sounds"


def real_clips(count: int, speech: bool = False) -> list[StageInput]:
    """One clip per class, or (``speech``) every clip with speech."""
    seen: set[str] = set()
    items = []
    for line in (SOUNDS / "labels.jsonl").read_text().splitlines():
        row = json.loads(line)
        if speech and not row.get("has_speech"):
            continue
        if not speech and (row["class"] in seen or len(seen) == count):
            continue
        seen.add(row["class"])
        path = SOUNDS / row["path"]
        audio = decode_audio(path, Window(0, 30), 30).audio
        views = {
            AUDIO_16K_MONO: audio.mono().resample(16_000),
            AUDIO_44K_STEREO: audio.channel_layout(2).resample(44_100),
        }
        items.append(StageInput(Clip(row["class"], str(path)), views, {}))  # type: ignore[arg-type]
    return items


def with_voice_activity(items: list[StageInput]) -> list[StageInput]:
    """The clips with their VAD cue, which ASR reads to decide whether to transcribe."""
    vad = VadConfig().build(BuildContext())
    vad.setup()
    cues = vad(items)
    return [
        StageInput(item.clip, item.views, {"vad": cue})
        for item, cue in zip(items, cues, strict=True)
    ]


def clips_per_s(stage: Stage, items: list[StageInput]) -> float:
    stage.setup()
    stage(items[: stage.batch_size])  # warm-up: first-call allocations, thread pools
    started = time.perf_counter()
    for i in range(0, len(items), stage.batch_size):
        stage(items[i : i + stage.batch_size])
    return len(items) / (time.perf_counter() - started)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--stages", default="vad,tagging,separation,asr")
    args = parser.parse_args()
    items = real_clips(args.clips)
    audio_s = sum(i.audio(AUDIO_16K_MONO).duration_s for i in items)
    print(
        f"machine: {platform.machine()}, {cpu_name()}, {os.cpu_count()} cores; "
        f"{len(items)} real clips, {audio_s:.0f} s of audio"
    )
    context = BuildContext()
    defaults = {
        "vad": VadConfig().batch_size,
        "tagging": TaggingConfig().batch_size,
        "separation": 4,  # its CPU default is 1; 4 shows what batching does here
        "asr": 4,  # the same
    }
    build: dict[str, Callable[[int], Stage]] = {
        "vad": lambda b: VadConfig(batch_size=b).build(context),
        "tagging": lambda b: TaggingConfig(batch_size=b).build(context),
        "separation": lambda b: SeparationConfig(batch_size=b).build(context),
        "asr": lambda b: AsrConfig(batch_size=b, threads=2).build(context),
    }
    print(f"{'stage':12s} {'batch':>5s} {'clips/s':>8s} {'batch 1':>8s} {'ratio':>6s}")
    for name in args.stages.split(","):
        make, batch = build[name], defaults[name]
        clips = items if name != "asr" else with_voice_activity(real_clips(0, speech=True))
        one = clips_per_s(make(1), clips)
        many = clips_per_s(make(batch), clips)
        print(f"{name:12s} {batch:5d} {many:8.2f} {one:8.2f} {many / one:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
