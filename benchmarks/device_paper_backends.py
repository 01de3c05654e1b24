"""Throughput of the paper's separation and ASR backends at real size on a GPU.

Real-size architectures (HT-Demucs v4 defaults; Whisper large-v3 dimensions) with random
weights give real throughput; they are built here, saved the way the released
checkpoints are, and run through fusionaudio's own loading code (HTDemucsTorch,
TransformersWhisper). Baseline in the same run: real time, and the same HT-Demucs on the
machine's CPU. Usage (on a GPU machine): python benchmarks/device_paper_backends.py DATA_DIR
where DATA_DIR holds whisper_tokenizer.json (Whisper's tokenizer.json).
"""

from __future__ import annotations

import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import torch

from fusionaudio.backends.htdemucs_torch import HTDemucsTorch
from fusionaudio.backends.whisper_transformers import TransformersWhisper

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def speech_16k() -> np.ndarray:
    with wave.open(str(EXAMPLES / "speech_fox.wav")) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return data.astype(np.float32) / 32768.0


def bench_htdemucs(work: Path) -> None:
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state

    model = HTDemucs(sources=["drums", "bass", "other", "vocals"])  # the released htdemucs shape
    params = sum(p.numel() for p in model.parameters()) / 1e6
    args, kwargs = model._init_args_kwargs
    path = work / "htdemucs_random.th"
    torch.save(
        {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None)}, path
    )
    rng = np.random.default_rng(0)
    for device, seconds in (("cuda", 60.0), ("cpu", 10.0)):
        backend = HTDemucsTorch(path, device=device, threads=16)
        backend.setup()
        mix = (0.1 * rng.standard_normal((2, int(44_100 * seconds)))).astype(np.float32)
        backend.separate(mix[:, : 44_100 * 8])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        backend.separate(mix)
        if device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
        print(
            f"HT-Demucs ({params:.1f} M params) on {device}: {seconds:.0f} s of stereo audio in {wall:.2f} s = {seconds / wall:.1f}x real time"
        )


def bench_whisper(work: Path, tokenizer_json: Path) -> None:
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    config = WhisperConfig(
        vocab_size=51866, num_mel_bins=128, d_model=1280, encoder_layers=32, decoder_layers=32,
        encoder_attention_heads=20, decoder_attention_heads=20, encoder_ffn_dim=5120,
        decoder_ffn_dim=5120, max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=50258, pad_token_id=50257, bos_token_id=50257, eos_token_id=50257,
    )  # fmt: skip
    folder = work / "whisper-large-v3-random"
    model = WhisperForConditionalGeneration(config).half()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    model.save_pretrained(folder)
    WhisperProcessor(
        WhisperFeatureExtractor(feature_size=128),
        WhisperTokenizerFast(tokenizer_file=str(tokenizer_json)),
    ).save_pretrained(folder)
    backend = TransformersWhisper(str(folder), device="cuda", dtype="float16", max_new_tokens=100)
    backend.setup()
    backend._model.generation_config.min_new_tokens = 100  # random weights: fix the length
    signal = np.tile(speech_16k(), 4)[: 16_000 * 30]
    backend.transcribe(signal)  # warm-up
    torch.cuda.synchronize()
    started = time.perf_counter()
    runs = 5
    for _ in range(runs):
        backend.transcribe(signal)
    torch.cuda.synchronize()
    wall = (time.perf_counter() - started) / runs
    print(
        f"Whisper large-v3 shape ({params:.0f} M params, fp16) on cuda: 30 s clip + 100 tokens in {wall:.2f} s = {30 / wall:.1f}x real time"
    )


def main() -> None:
    data = Path(sys.argv[1])
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bench_htdemucs(work)
        bench_whisper(work, data / "whisper_tokenizer.json")


if __name__ == "__main__":
    main()
