"""The AudioSet tagger on real recordings: the shipped w8a8 YAMNet (int8, the baseline) against
its float network (float32, the default), measured in the same run.

For every labelled clip in ../shared/data/sounds it runs both precisions and prints:
how often the clip's labelled source is among the top 1 / 3 / 5 clip-level tags (by the
caption benchmark's keywords, never the product's); and, after the source decision
(``sound_sources``), how often an accepted source names the labelled source, how often
an accepted source names something the label does not support, and how often no
specific source is accepted at all. Seconds per clip for both, and the ratio.

Usage: python benchmarks/bench_tagger.py [--limit N] [--threads T]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_captions import CLASS_WORDS, SOUNDS, labels, mentions, pick, source_words

from fusionaudio.backends.sound_sources import sound_sources
from fusionaudio.backends.yamnet_onnx import Precision, YamnetOnnx
from fusionaudio.media.decode import Window, decode_audio

# Accepted families whose label is a scene or a quality, not a source: never "unsupported".
NOT_A_SOURCE = {"generic"}


def load_16k(path: Path) -> np.ndarray:
    """Decoded and resampled by the pipeline's own media code, as the tagger hears it."""
    audio = decode_audio(path, Window(0.0, None), timeout_s=30).audio
    samples: np.ndarray = audio.mono().resample(16_000).samples[0]
    return samples


def measure(tagger: YamnetOnnx, clips: list[tuple[dict, np.ndarray]]) -> dict[str, float]:
    others = source_words()
    top = {1: 0, 3: 0, 5: 0}
    named = unsupported = nothing = 0
    seconds = 0.0
    for row, signal in clips:
        words = CLASS_WORDS[row["class"]]
        started = time.perf_counter()
        scores = tagger.patch_scores(signal)
        seconds += time.perf_counter() - started
        clip = scores.mean(axis=0)
        order = np.argsort(-clip)
        hits = [bool(mentions(tagger.labels[i], words)) for i in order[:5]]
        for k in top:
            top[k] += any(hits[:k])
        duration = len(signal) / 16_000
        sources = sound_sources(
            scores, tagger.labels, tagger.patch_len_s, tagger.patch_hop_s, duration, signal
        )
        accepted = [s for s in sources if s["accepted"] and s["kind"] not in NOT_A_SOURCE]
        text = " ".join(" ".join([s["label"], *s["tags"]]) for s in accepted)
        named += bool(mentions(text, words))
        wrong = [
            s
            for s in accepted
            if not mentions(" ".join([s["label"], *s["tags"]]), words)
            and mentions(" ".join([s["label"], *s["tags"]]), others)
        ]
        unsupported += bool(wrong)
        nothing += not accepted
    n = len(clips)
    return {
        "top1": top[1] / n,
        "top3": top[3] / n,
        "top5": top[5] / n,
        "accepted_names_label": named / n,
        "accepted_unsupported": unsupported / n,
        "no_specific_source": nothing / n,
        "s_per_clip": seconds / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = pick(labels(SOUNDS), args.limit)
    clips = [(row, load_16k(SOUNDS / row["path"])) for row in rows]
    print(
        f"{len(clips)} clips, {len(CLASS_WORDS)} classes; {platform.processor() or platform.machine()}"
    )
    results: dict[Precision, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("int8", "float32"):
            tagger = YamnetOnnx(Path(tmp), threads=args.threads, precision=precision)
            tagger.setup()
            tagger.patch_scores(clips[0][1])  # warm-up
            results[precision] = measure(tagger, clips)
    keys = list(results["int8"])
    print(f"{'':24}{'int8 (shipped)':>16}{'float32':>12}")
    for key in keys:
        print(f"{key:24}{results['int8'][key]:>16.3f}{results['float32'][key]:>12.3f}")
    ratio = results["int8"]["s_per_clip"] / results["float32"]["s_per_clip"]
    print(f"float32 is {ratio:.2f}x the clips/s of int8 (same run, {args.threads} thread(s))")


if __name__ == "__main__":
    main()
