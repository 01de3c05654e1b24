"""Whisper base (faster-whisper) word error rate and speed per compute type and beam size.

Every speech clip with known text: the English examples and the labelled real clips in
``../shared/data/sounds`` whose ``speech_text`` is set (Czech and Dutch), each on the raw
audio and on the Spleeter vocal stem (the view the offline default transcribes). The
language is auto-detected, as the offline default runs (``--given-language`` passes the
label's language instead). The baseline in the same run is the former default, int8 with
beam 1: the speed column is its seconds per audio second divided by each row's.

WER is ``fusionaudio.metrics.word_error_rate`` (case and punctuation folded) after
folding diacritics (NFKD), because that metric's tokens are ASCII: without the folding
"Tisíce" would count as two words.

Usage: python benchmarks/bench_asr.py [--compute-types int8 float32] [--beams 1 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionaudio.backends.whisper_ctranslate2 import FasterWhisper
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.metrics import word_error_rate
from fusionaudio.schema import Clip
from fusionaudio.stages.base import AUDIO_44K_STEREO, VOCALS_16K, StageInput, StageOutput
from fusionaudio.stages.experts.separation import SeparationConfig, SeparationStage

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SOUNDS = ROOT.parent / "shared" / "data" / "sounds"
EXAMPLE_TEXT = {
    "speech_fox.wav": (
        "The quick brown fox jumps over the lazy dog. "
        "Today we are testing an offline audio captioning pipeline."
    ),
    "video_cat.mp4": "Look at this cat. She is sitting very still and watching the camera.",
}
BASELINE = ("int8", 1)


@dataclass
class SpeechClip:
    name: str
    path: Path
    text: str
    language: str
    raw_16k: np.ndarray
    vocals_16k: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.raw_16k) / 16_000


def fold(text: str) -> str:
    """Diacritics removed (NFKD), so the ASCII-token WER sees whole words."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def wer(reference: str, hypothesis: str) -> float:
    return word_error_rate(fold(reference), fold(hypothesis))


def speech_clips() -> list[SpeechClip]:
    wanted = [(EXAMPLES / name, text, "en") for name, text in EXAMPLE_TEXT.items()]
    labels = SOUNDS / "labels.jsonl"
    if labels.is_file():
        for line in labels.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("speech_text"):
                wanted.append(
                    (SOUNDS / row["path"], row["speech_text"], row.get("speech_language") or "")
                )
    separation = SeparationStage(SeparationConfig())
    separation.setup()
    clips = []
    for path, text, language in wanted:
        audio = decode_audio(path, Window(0.0, 60.0), 30).audio
        item = StageInput(
            Clip(path.name, str(path)),
            {AUDIO_44K_STEREO: audio.channel_layout(2).resample(44_100)},
            {},
        )  # type: ignore[arg-type]
        (out,) = separation([item])
        assert isinstance(out, StageOutput)
        vocals = out.views[VOCALS_16K].samples[0]  # type: ignore[union-attr]
        raw = audio.mono().resample(16_000).samples[0]
        clips.append(SpeechClip(path.name, path, text, language, raw, vocals))
    return clips


def cpu_summary() -> str:
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [
        f
        for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni")
        if f in flags
    ]
    return f"{model}, {platform.machine()}, flags: {' '.join(simd) or 'none of avx2/avx512'}"


def main() -> None:
    import ctranslate2

    supported = sorted(ctranslate2.get_supported_compute_types("cpu"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compute-types", nargs="+", default=supported)
    parser.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--given-language", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="as the offline default")
    args = parser.parse_args()

    clips = speech_clips()
    total = sum(c.duration_s for c in clips)
    print(f"CPU: {cpu_summary()}; ctranslate2 {ctranslate2.__version__}, supported: {supported}")
    print(
        f"{len(clips)} clips, {total:.1f} s of audio; language: "
        + ("given" if args.given_language else "auto-detected")
        + f"; threads {args.threads}"
    )
    models_dir = Path(tempfile.gettempdir()) / "fusionaudio-bench-models"
    configs = [(ct, beam) for ct in args.compute_types for beam in args.beams]
    if BASELINE not in configs:
        configs.insert(0, BASELINE)
    rows: dict[tuple[str, int, str], tuple[list[float], float]] = {}
    print(f"\n{'compute':14s} {'beam':>4s} {'view':6s} {'clip':38s} {'lang':>4s} {'WER':>6s}  text")
    for compute_type, beam in configs:
        backends = {}
        for language in {c.language for c in clips} if args.given_language else {None}:
            backend = FasterWhisper(
                models_dir,
                compute_type=compute_type,
                beam_size=beam,
                threads=args.threads,
                language=language or None,
            )
            backend.setup()
            backend.transcribe(clips[0].raw_16k)  # warm-up, not timed
            backends[language] = backend
        for view in ("raw", "vocals"):
            wers, busy = [], 0.0
            for clip in clips:
                backend = backends[clip.language if args.given_language else None]
                signal = clip.raw_16k if view == "raw" else clip.vocals_16k
                started = time.perf_counter()
                result = backend.transcribe(signal)
                busy += time.perf_counter() - started
                wers.append(wer(clip.text, result["text"]))
                print(
                    f"{compute_type:14s} {beam:4d} {view:6s} {clip.name[:38]:38s} "
                    f"{result['language']:>4s} {wers[-1]:6.3f}  {result['text'][:70]!r}"
                )
            rows[(compute_type, beam, view)] = (wers, busy / total)
    english = [c.language == "en" for c in clips]
    print(
        f"\nmean WER over all {len(clips)} clips, the {sum(english)} English ones and the "
        f"{len(clips) - sum(english)} others; speed = the baseline's s per audio s / the row's"
    )
    print(
        f"{'compute':14s} {'beam':>4s} {'view':6s} {'WER all':>8s} {'WER en':>7s} "
        f"{'WER other':>9s} {'s/audio s':>10s} {'speed':>6s}"
    )
    for (compute_type, beam, view), (wers, per_s) in rows.items():
        base = rows[(*BASELINE, view)][1]
        en = [w for w, e in zip(wers, english, strict=True) if e]
        other = [w for w, e in zip(wers, english, strict=True) if not e]
        print(
            f"{compute_type:14s} {beam:4d} {view:6s} {statistics.fmean(wers):8.3f} "
            f"{statistics.fmean(en) if en else float('nan'):7.3f} "
            f"{statistics.fmean(other) if other else float('nan'):9.3f} "
            f"{per_s:10.3f} {base / per_s:5.2f}x"
        )


if __name__ == "__main__":
    main()
