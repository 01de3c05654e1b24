"""The ASR hallucination screen on real recordings: Whisper base (the offline default) run
on the first clip of every class in ../shared/data/sounds with the voice-activity gate
bypassed, then screened. Prints, for clips without speech, how many got text and how many
of those keep any text after the screen (and which), and for the speech clips whether the
screen left their transcript whole.

Usage: python benchmarks/bench_asr_filter.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from fusionaudio.backends.whisper_ctranslate2 import FasterWhisper
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.stages.experts.asr_filter import screen_transcript

SOUNDS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sounds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = [json.loads(line) for line in (SOUNDS / "labels.jsonl").open() if line.strip()]
    firsts: dict[str, dict] = {}
    for row in rows:
        firsts.setdefault(row["class"], row)
    print(f"{platform.machine()}, {platform.processor() or platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        whisper = FasterWhisper(
            Path(tmp), compute_type="float32", beam_size=1, threads=args.threads
        )
        whisper.setup()
        wrote = kept = speech_whole = speech = 0
        kept_texts = []
        started = time.perf_counter()
        for label, row in sorted(firsts.items()):
            audio = decode_audio(SOUNDS / row["path"], Window(0.0, None), timeout_s=30).audio
            raw = whisper.transcribe(audio.mono().resample(16_000).samples[0])
            screened = screen_transcript(raw)
            if row["has_speech"]:
                speech += 1
                speech_whole += screened["text"] == raw["text"]
            elif raw["text"].strip():
                wrote += 1
                if screened["text"]:
                    kept += 1
                    kept_texts.append((label, screened["text"]))
        print(
            f"classes: {len(firsts)} ({speech} with speech); {time.perf_counter() - started:.0f} s"
        )
        print(f"non-speech clips where Whisper wrote text: {wrote}")
        print(f"  of those, text left after the screen: {kept} {kept_texts}")
        print(f"speech clips whose transcript the screen left whole: {speech_whole} of {speech}")


if __name__ == "__main__":
    main()
