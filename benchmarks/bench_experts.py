"""Each offline expert's time per second of audio on this CPU, plus ASR WER and music-gate
accuracy on the example clips. The baseline in the same run is real time (the audio's
own duration): ``x RT`` is how many seconds of audio one wall second processes.

Usage: python benchmarks/bench_experts.py
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

from fusionaudio.config import load_config
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.media.frames import frame_times, sample_frames
from fusionaudio.metrics import word_error_rate
from fusionaudio.pipeline.graph import build_stages
from fusionaudio.schema import Clip, Cue
from fusionaudio.stages.base import (
    AUDIO_16K_MONO,
    AUDIO_44K_STEREO,
    VIDEO_FRAMES,
    StageInput,
    StageOutput,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPEECH = {
    "speech_fox.wav": "The quick brown fox jumps over the lazy dog. Today we are testing an offline audio captioning pipeline.",
    "video_cat.mp4": "Look at this cat. She is sitting very still and watching the camera.",
}
HAS_MUSIC = {
    "music_pingus.ogg": True,
    "speech_fox.wav": False,
    "engine_start.mp3": False,
    "video_cat.mp4": False,
}


def main() -> None:
    config = load_config().model_copy(update={"models_dir": Path(tempfile.mkdtemp()) / "models"})
    stages = build_stages(config)
    for stage in stages:
        stage.setup()
    clips = {}
    for path in sorted(EXAMPLES.iterdir()):
        if path.suffix == ".md":
            continue
        audio = decode_audio(path, Window(0, 60), 30).audio
        views = {
            AUDIO_16K_MONO: audio.mono().resample(16_000),
            AUDIO_44K_STEREO: audio.channel_layout(2).resample(44_100),
        }
        if path.suffix == ".mp4":
            views[VIDEO_FRAMES] = sample_frames(
                path, frame_times(0, audio.duration_s, 1.0, 16), 448, 30
            )  # type: ignore[assignment]
        clips[path.name] = (Clip(path.name, str(path)), views, audio.duration_s)
    total_audio = sum(d for _, _, d in clips.values())
    busy = {stage.name: 0.0 for stage in stages}
    audio_seen = {stage.name: 0.0 for stage in stages}
    results: dict[str, dict[str, Cue]] = {}
    for name, (clip, views, duration) in clips.items():
        cues: dict[str, Cue] = {}
        for stage in stages:
            if any(need not in views and need not in cues for need in stage.needs):
                continue
            item = StageInput(
                clip,
                {n: views[n] for n in stage.needs if n in views},
                {n: cues[n] for n in stage.needs if n in cues},
            )  # type: ignore[misc]
            started = time.perf_counter()
            (out,) = stage([item])
            busy[stage.name] += time.perf_counter() - started
            audio_seen[stage.name] += duration
            if isinstance(out, StageOutput):
                views.update(out.views)  # type: ignore[arg-type]
                out = out.cue
            cues[stage.name] = out
        results[name] = cues
    print(
        f"machine: {platform.machine()}, {platform.python_version()}, 2-core CPU expected; {len(clips)} clips, {total_audio:.1f} s audio"
    )
    print(f"{'expert':18s} {'ms per audio s':>15s} {'x real time':>12s}")
    for stage in stages:
        if audio_seen[stage.name] == 0:
            continue
        per = busy[stage.name] / audio_seen[stage.name]
        print(f"{stage.name:18s} {per * 1000:15.1f} {1 / per if per else float('inf'):12.1f}")
    all_busy = sum(busy.values())
    print(
        f"{'all experts':18s} {all_busy / total_audio * 1000:15.1f} {total_audio / all_busy:12.1f}"
    )
    for name, reference in SPEECH.items():
        text = results[name]["asr"].output["text"]
        print(f"ASR WER {name}: {word_error_rate(reference, text):.1%}  ({text!r})")
    right = sum(results[n]["music"].output["gate"]["open"] == want for n, want in HAS_MUSIC.items())
    print(f"music gate: {right}/{len(HAS_MUSIC)} correct")


if __name__ == "__main__":
    main()
