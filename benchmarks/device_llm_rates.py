"""Measured GPU rates for the audio-LLM, fusion-LLM and CLAP rows of docs/cluster.md.

docs/cluster.md estimates the GPU-hours to caption 1M ten-second clips; three of its rows
were assumed rates. This script measures them on one GPU with real-size architectures:

- audio_llm: Qwen2-Audio-7B-Instruct (Whisper-large-v3-like encoder + Qwen-7B LM, 8.4 B
  params) describing a 10 s clip: 128 x 3000 log-mel input_features (10 s of audio, padded
  to 30 s as the processor does), 250 audio placeholder tokens + a ~40-token prompt, 100
  generated tokens a clip.
- fusion: QwQ-32B (the Qwen2.5-32B architecture, 32.8 B params) with a 1,500-token prompt
  and 500 generated tokens a clip (it reasons).
- clap: LAION-CLAP htsat-unfused (transformers' default ClapConfig): ClapFeatureExtractor
  on the CPU (timed apart), audio embeddings of 10 s clips and text embeddings of ~40-token
  captions on the GPU, batch 64.

For each LLM and batch size it reports wall seconds of `generate`, prefill tokens/s (timed
by a 1-token `generate`), aggregate generated tokens/s, clips/s (= batch / wall) and the
peak GPU memory.

Weights are random (models built from their configs directly on the GPU, bfloat16): the
throughput of a network depends on its shapes, not on its weights, and no checkpoint has
to be downloaded. Random weights never emit an end-of-text token on purpose, so greedy
decoding with min_new_tokens = max_new_tokens makes every sequence decode exactly the
asked number of tokens.

transformers' `generate` runs one static batch at a time (every sequence waits for the
batch, no paged KV cache, Python overhead per step), so it is slower than vLLM's
continuous batching that docs/cluster.md deploys: these rates are a lower bound on
throughput, so GPU-hours derived from them are an upper bound.

Results are printed and, with --json, written after every measurement (a killed run
leaves its partial results).

Usage, on the GPU machine:
    python3 benchmarks/device_llm_rates.py --json $OUT/llm_rates.json
CPU smoke test (tiny configs, same code path):
    .venv/bin/python benchmarks/device_llm_rates.py --tiny --device cpu
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    ClapAudioConfig,
    ClapConfig,
    ClapFeatureExtractor,
    ClapModel,
    ClapTextConfig,
    Qwen2AudioConfig,
    Qwen2AudioEncoder,
    Qwen2AudioEncoderConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2Config,
)

PARTS = ("audio_llm", "fusion", "clap")
DTYPE = torch.bfloat16
CLIP_SECONDS = 10.0
WHISPER_FRAMES = 3000  # Qwen2-Audio's encoder always takes 30 s of 10 ms mel frames
CLIP_FRAMES = int(CLIP_SECONDS * 100)  # the frames that hold the 10 s clip
AUDIO_TEXT_TOKENS = 40  # chat template + instruction around the audio tokens
FIRST_SPECIAL_ID = 151643  # Qwen's special tokens start here; prompts draw ids below it


# ---------------------------------------------------------------- configs


def qwen2_audio_config(tiny: bool) -> Qwen2AudioConfig:
    """Qwen2-Audio-7B-Instruct's config.json shape (the default text_config is bigger)."""
    if tiny:
        audio = {"encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 128}
        audio |= {"d_model": 64, "num_mel_bins": 128, "max_source_positions": 1500}
        text = {"model_type": "qwen2", "vocab_size": 1024, "hidden_size": 64}
        text |= {"intermediate_size": 128, "num_hidden_layers": 2}
        text |= {"num_attention_heads": 4, "num_key_value_heads": 4}
        return Qwen2AudioConfig(audio_config=audio, text_config=text, audio_token_index=1000)
    text = {
        "model_type": "qwen2",
        "vocab_size": 156032,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "bos_token_id": 151643,
        "eos_token_id": 151645,
    }
    return Qwen2AudioConfig(text_config=text, audio_token_index=151646)


def qwq_32b_config(tiny: bool) -> Qwen2Config:
    """QwQ-32B = the Qwen2.5-32B architecture."""
    if tiny:
        return Qwen2Config(
            vocab_size=1024,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    return Qwen2Config(
        vocab_size=152064,
        hidden_size=5120,
        intermediate_size=27648,
        num_hidden_layers=64,
        num_attention_heads=40,
        num_key_value_heads=8,
        max_position_embeddings=40960,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        bos_token_id=151643,
        eos_token_id=151645,
    )


def clap_config(tiny: bool) -> ClapConfig:
    """LAION-CLAP htsat-unfused = transformers' default ClapConfig()."""
    if not tiny:
        return ClapConfig()
    text = ClapTextConfig(
        vocab_size=1000,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        projection_dim=32,
    )
    audio = ClapAudioConfig(
        patch_embeds_hidden_size=16,
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 2, 2, 4],
        hidden_size=128,
        projection_dim=32,
    )
    return ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=32)


# ---------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(message, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def gib(n_bytes: float) -> float:
    return round(n_bytes / 2**30, 2)


def peak_gib(device: torch.device) -> float | None:
    return gib(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def allocated_gib(device: torch.device) -> float | None:
    return gib(torch.cuda.memory_allocated(device)) if device.type == "cuda" else None


def show_gib(value: float | None) -> str:
    return "n/a (cpu)" if value is None else f"{value} GiB"


def param_billions(model: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in model.parameters()) / 1e9, 4)


def timed(device: torch.device, fn: Callable[[], Any]) -> tuple[Any, float]:
    sync(device)
    started = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - started


class Report:
    """All results, rewritten to --json after each measurement."""

    def __init__(self, path: Path | None, meta: dict[str, Any]) -> None:
        self.path = path
        self.data: dict[str, Any] = {"meta": meta}

    def part(self, name: str) -> dict[str, Any]:
        return self.data.setdefault(name, {"runs": []})

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def guarded(report: Report, part: str, label: str, fn: Callable[[], dict[str, Any]]) -> bool:
    """Run one measurement; record its result or its error; True when it worked."""
    ok = True
    try:
        row = fn()
    except Exception as exc:  # one failure (e.g. OOM) must not end the run
        ok = False
        row = {"label": label, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        log(f"  !! {label} failed: {row['error']}")
        traceback.print_exc(limit=3, file=sys.stdout)
        sys.stdout.flush()
    report.part(part)["runs"].append(row)
    report.save()
    return ok


def build_on_device(
    factory: Callable[..., torch.nn.Module], config: Any, device: torch.device, **kwargs: Any
) -> tuple[torch.nn.Module, float]:
    """Construct (and randomly initialise) the weights on the device itself, in bfloat16."""
    free_memory(device)
    started = time.perf_counter()
    with torch.device(device):
        model = factory(config, dtype=DTYPE, **kwargs)
    model.eval()
    sync(device)
    return model, time.perf_counter() - started


def random_ids(rng: torch.Generator, batch: int, length: int, high: int) -> torch.Tensor:
    return torch.randint(3, high, (batch, length), generator=rng)


# ---------------------------------------------------------------- LLM generate


def generate_row(
    model: torch.nn.Module,
    device: torch.device,
    inputs: dict[str, torch.Tensor],
    new_tokens: int,
    eos_token_id: int,
    label: str,
) -> dict[str, Any]:
    """Time a 1-token generate (prefill) and a full generate on one batch."""
    batch, prompt_len = inputs["input_ids"].shape
    on_device = {k: v.to(device) for k, v in inputs.items()}

    def run(n: int) -> torch.Tensor:
        with torch.inference_mode():
            return model.generate(
                **on_device,
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                num_beams=1,
                eos_token_id=eos_token_id,
                pad_token_id=0,
            )

    free_memory(device)
    out, wall = timed(device, lambda: run(new_tokens))
    generated = int(out.shape[1] - prompt_len)
    del out
    peak = peak_gib(device)
    free_memory(device)
    _, prefill_s = timed(device, lambda: run(1))  # after the full run: shapes are warm
    decode_s = wall - prefill_s  # noise can make it <= 0 on tiny CPU runs
    row = {
        "label": label,
        "batch": batch,
        "prompt_tokens": prompt_len,
        "new_tokens_asked": new_tokens,
        "new_tokens_generated": generated,
        "wall_s": round(wall, 3),
        "prefill_s": round(prefill_s, 3),
        "prefill_tokens_per_s": round(batch * prompt_len / prefill_s, 1),
        "generated_tokens_per_s": round(batch * generated / wall, 1),
        "decode_tokens_per_s": (
            round(batch * (generated - 1) / decode_s, 1) if decode_s > 0 else None
        ),
        "clips_per_s": round(batch / wall, 3),
        "peak_gib": peak,
    }
    log(
        f"  {label}: batch {batch}, {prompt_len} prompt + {generated} new tokens: "
        f"{wall:.2f} s wall ({prefill_s:.2f} s prefill = {row['prefill_tokens_per_s']:.0f} tok/s), "
        f"{row['generated_tokens_per_s']:.0f} generated tok/s, {row['clips_per_s']:.2f} clips/s, "
        f"peak {show_gib(peak)}"
    )
    free_memory(device)
    return row


def warm_up(
    model: torch.nn.Module, device: torch.device, inputs: dict[str, torch.Tensor], eos: int
) -> None:
    started = time.perf_counter()
    generate_row(model, device, inputs, 4, eos, "warm-up")
    log(f"  warm-up done in {time.perf_counter() - started:.1f} s")


def audio_inputs(
    config: Qwen2AudioConfig, rng: torch.Generator, batch: int, audio_tokens: int
) -> dict[str, torch.Tensor]:
    """What Qwen2AudioProcessor makes for a 10 s clip: 30 s of mel frames, 10 s of them
    valid, and the <|AUDIO|> token expanded to one placeholder per encoder output frame."""
    vocab = int(config.text_config.vocab_size)
    high = min(vocab, FIRST_SPECIAL_ID)
    head = random_ids(rng, batch, 12, high)  # system turn + "Audio 1: <|audio_bos|>"
    tail = random_ids(rng, batch, AUDIO_TEXT_TOKENS - 12, high)  # instruction + assistant
    audio = torch.full((batch, audio_tokens), int(config.audio_token_index), dtype=torch.long)
    input_ids = torch.cat([head, audio, tail], dim=1)
    features = torch.randn((batch, 128, WHISPER_FRAMES), generator=rng)
    feature_mask = torch.zeros((batch, WHISPER_FRAMES), dtype=torch.long)
    feature_mask[:, :CLIP_FRAMES] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "input_features": features.to(DTYPE),
        "feature_attention_mask": feature_mask,
    }


def audio_token_count(encoder: Qwen2AudioEncoder) -> int:
    _, out = encoder._get_feat_extract_output_lengths(torch.tensor([CLIP_FRAMES]))
    return int(out.item())


def bench_audio_llm(args: argparse.Namespace, device: torch.device, report: Report) -> None:
    log("== audio_llm: Qwen2-Audio-7B-Instruct description (audio encoder + 7B LM)")
    part = report.part("audio_llm")
    config = qwen2_audio_config(args.tiny)
    batches = (2, 1) if args.tiny else (128, 64, 16, 1)
    new_tokens = 8 if args.tiny else 100
    eos = int(config.text_config.eos_token_id or 2)
    rng = torch.Generator().manual_seed(0)
    model: torch.nn.Module | None = None
    try:
        model, init_s = build_on_device(
            Qwen2AudioForConditionalGeneration._from_config,
            config,
            device,
            attn_implementation="sdpa",
        )
        n_audio = audio_token_count(model.model.audio_tower)
        part.update(
            model="Qwen2AudioForConditionalGeneration (Qwen2-Audio-7B-Instruct shape)",
            params_b=param_billions(model),
            init_s=round(init_s, 2),
            weights_gib=allocated_gib(device),
            audio_tokens_per_clip=n_audio,
            text_tokens_per_clip=AUDIO_TEXT_TOKENS,
            new_tokens=new_tokens,
        )
        log(
            f"  built {part['params_b']} B params in {init_s:.1f} s (weights "
            f"{show_gib(part['weights_gib'])}); a clip = {n_audio} audio tokens + "
            f"{AUDIO_TEXT_TOKENS} text tokens"
        )
        report.save()
        warm_up(model, device, audio_inputs(config, rng, 1, n_audio), eos)
    except Exception as exc:
        part["full_model_error"] = f"{type(exc).__name__}: {exc}"[:2000]
        log(f"  !! full Qwen2-Audio model failed ({part['full_model_error']}); falling back")
        traceback.print_exc(limit=3, file=sys.stdout)
        report.save()
        model = None
    if model is None:
        free_memory(device)
        bench_audio_llm_split(args, device, report, config)
        return
    for batch in batches:
        inputs = audio_inputs(config, rng, batch, n_audio)
        run = partial(generate_row, model, device, inputs, new_tokens, eos, "qwen2-audio")
        guarded(report, "audio_llm", f"qwen2-audio b{batch}", run)
    del model
    free_memory(device)


def bench_audio_llm_split(
    args: argparse.Namespace, device: torch.device, report: Report, config: Qwen2AudioConfig
) -> None:
    """Fallback: the 7B LM alone on the same token counts + a separate encoder pass."""
    part = report.part("audio_llm")
    part["fallback"] = "Qwen2 LM alone (audio tokens as text) + separate Qwen2AudioEncoder pass"
    log(f"  FALLBACK: {part['fallback']}")
    batches = (2, 1) if args.tiny else (128, 64, 16, 1)
    new_tokens = 8 if args.tiny else 100
    rng = torch.Generator().manual_seed(0)
    encoder_config = Qwen2AudioEncoderConfig(**config.audio_config.to_dict())
    guarded(
        report,
        "audio_llm",
        "audio encoder",
        partial(encoder_rows, encoder_config, device, rng, batches),
    )
    text_config = config.text_config
    model, init_s = build_on_device(
        AutoModelForCausalLM.from_config, text_config, device, attn_implementation="sdpa"
    )
    part.update(lm_params_b=param_billions(model), lm_init_s=round(init_s, 2))
    report.save()
    prompt = 250 + AUDIO_TEXT_TOKENS
    high = min(int(text_config.vocab_size), FIRST_SPECIAL_ID)
    eos = int(text_config.eos_token_id or 2)
    warm_up(model, device, text_inputs(rng, 1, prompt, high), eos)
    for batch in batches:
        inputs = text_inputs(rng, batch, prompt, high)
        run = partial(generate_row, model, device, inputs, new_tokens, eos, "qwen2-7b lm")
        guarded(report, "audio_llm", f"qwen2-7b-lm b{batch}", run)
    del model
    free_memory(device)


def encoder_rows(
    config: Qwen2AudioEncoderConfig,
    device: torch.device,
    rng: torch.Generator,
    batches: tuple[int, ...],
) -> dict[str, Any]:
    """Qwen2-Audio's audio encoder alone on 30 s mel inputs (the fallback's audio half)."""
    encoder, _ = build_on_device(
        Qwen2AudioEncoder._from_config, config, device, attn_implementation="sdpa"
    )
    rows: dict[str, Any] = {"label": "audio encoder", "params_b": param_billions(encoder)}
    for batch in batches:
        features = torch.randn((batch, 128, WHISPER_FRAMES), generator=rng).to(device, DTYPE)
        with torch.inference_mode():
            encoder(features[:1])  # warm-up
            _, wall = timed(device, partial(encoder, features))
        rows[f"b{batch}"] = {"wall_s": round(wall, 4), "clips_per_s": round(batch / wall, 1)}
        log(f"  audio encoder batch {batch}: {wall:.3f} s = {batch / wall:.1f} clips/s")
    del encoder
    free_memory(device)
    return rows


def text_inputs(
    rng: torch.Generator, batch: int, length: int, high: int
) -> dict[str, torch.Tensor]:
    ids = random_ids(rng, batch, length, high)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def bench_fusion(args: argparse.Namespace, device: torch.device, report: Report) -> None:
    log("== fusion: QwQ-32B (Qwen2.5-32B shape), 1,500-token prompt, 500 generated")
    part = report.part("fusion")
    config = qwq_32b_config(args.tiny)
    prompt = 128 if args.tiny else 1500
    new_tokens = 8 if args.tiny else 500
    batches = (2, 1) if args.tiny else (64, 16, 1)
    head_dim = config.hidden_size // config.num_attention_heads
    kv_per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * 2
    rng = torch.Generator().manual_seed(1)
    high = min(int(config.vocab_size), FIRST_SPECIAL_ID)
    eos = int(config.eos_token_id or 2)
    model, init_s = build_on_device(
        AutoModelForCausalLM.from_config, config, device, attn_implementation="sdpa"
    )
    part.update(
        model="Qwen2ForCausalLM (QwQ-32B / Qwen2.5-32B shape)",
        params_b=param_billions(model),
        init_s=round(init_s, 2),
        weights_gib=allocated_gib(device),
        prompt_tokens=prompt,
        new_tokens=new_tokens,
        kv_cache_bytes_per_token=kv_per_token,
    )
    log(
        f"  built {part['params_b']} B params in {init_s:.1f} s "
        f"(weights {show_gib(part['weights_gib'])})"
    )
    for batch in batches:
        kv = gib(kv_per_token * batch * (prompt + new_tokens))
        log(f"  batch {batch}: KV cache at the end {kv} GiB")
    report.save()
    warm_up(model, device, text_inputs(rng, 2, 64, high), eos)
    for batch in batches:
        inputs = text_inputs(rng, batch, prompt, high)
        run = partial(generate_row, model, device, inputs, new_tokens, eos, "qwq-32b")
        guarded(report, "fusion", f"qwq-32b b{batch}", run)
    del model
    free_memory(device)


# ---------------------------------------------------------------- CLAP


def clap_features(batch: int) -> tuple[dict[str, torch.Tensor], float]:
    """ClapFeatureExtractor on random 10 s clips at 48 kHz, one clip a call as
    fusionaudio's clap_transformers backend does; returns the batch and CPU s per clip."""
    # htsat-unfused's preprocessor uses truncation="rand_trunc": one mel a clip. The default
    # "fusion" stacks 4 mels, which only the fused checkpoint's 4-channel patch embed takes.
    extractor = ClapFeatureExtractor(truncation="rand_trunc")
    rng = np.random.default_rng(0)
    samples = int(CLIP_SECONDS * extractor.sampling_rate)
    clips = [(0.1 * rng.standard_normal(samples)).astype(np.float32) for _ in range(batch)]
    started = time.perf_counter()
    per_clip = [
        extractor([clip], sampling_rate=extractor.sampling_rate, return_tensors="pt")
        for clip in clips
    ]
    cpu_s = (time.perf_counter() - started) / batch
    return {key: torch.cat([f[key] for f in per_clip]) for key in per_clip[0]}, cpu_s


def bench_clap(args: argparse.Namespace, device: torch.device, report: Report) -> None:
    log("== clap: LAION-CLAP htsat-unfused (ClapModel(ClapConfig())) scoring")
    batch = 4 if args.tiny else 64
    repeats = 2 if args.tiny else 5
    text_len = 40
    report.part("clap").update(
        model="ClapModel(ClapConfig()) (laion/clap-htsat-unfused shape)",
        batch=batch,
        text_tokens=text_len,
        repeats=repeats,
    )

    held: dict[str, dict[str, torch.Tensor]] = {}

    def cpu_row() -> dict[str, Any]:
        features, cpu_s = clap_features(batch)
        held["features"] = features
        shapes = {k: list(v.shape) for k, v in features.items()}
        log(
            f"  CPU ClapFeatureExtractor: {1000 * cpu_s:.1f} ms a 10 s clip "
            f"({1 / cpu_s:.1f} clips/s on one core); features {shapes}"
        )
        return {
            "label": "feature extractor (CPU)",
            "cpu_ms_per_clip": round(1000 * cpu_s, 2),
            "clips_per_s_one_core": round(1 / cpu_s, 2),
            "input_shapes": shapes,
        }

    if not guarded(report, "clap", "feature extractor (CPU)", cpu_row):
        return
    features = held["features"]
    config = clap_config(args.tiny)
    vocab = int(config.text_config.vocab_size)
    rng = torch.Generator().manual_seed(2)
    ids = random_ids(rng, batch, text_len, vocab)
    text = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def run_model(model: ClapModel, dtype: torch.dtype) -> tuple[float, float]:
        audio = {
            k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
            for k, v in features.items()
        }
        text_on = {k: v.to(device) for k, v in text.items()}
        with torch.inference_mode():
            model.get_audio_features(**audio)  # warm-up
            model.get_text_features(**text_on)
            _, audio_s = timed(
                device, lambda: [model.get_audio_features(**audio) for _ in range(repeats)]
            )
            _, text_s = timed(
                device, lambda: [model.get_text_features(**text_on) for _ in range(repeats)]
            )
        return audio_s / repeats, text_s / repeats

    def gpu_row() -> dict[str, Any]:
        dtype = DTYPE
        model, init_s = build_on_device(ClapModel._from_config, config, device)
        try:
            audio_s, text_s = run_model(model, DTYPE)
        except Exception as exc:
            log(f"  bfloat16 CLAP failed ({type(exc).__name__}: {exc}); retrying in float32")
            dtype = torch.float32
            model = model.float()
            audio_s, text_s = run_model(model, torch.float32)
        both = 1 / (audio_s / batch + text_s / batch)
        row = {
            "label": f"clap b{batch}",
            "dtype": str(dtype).removeprefix("torch."),
            "attention": str(model.config._attn_implementation),
            "params_m": round(1000 * param_billions(model), 1),
            "init_s": round(init_s, 2),
            "batch": batch,
            "text_tokens": text_len,
            "audio_s_per_batch": round(audio_s, 4),
            "text_s_per_batch": round(text_s, 4),
            "audio_clips_per_s": round(batch / audio_s, 1),
            "text_captions_per_s": round(batch / text_s, 1),
            "clips_per_s_one_caption_each": round(both, 1),
            "peak_gib": peak_gib(device),
        }
        log(
            f"  {row['params_m']} M params, {row['dtype']}: audio {row['audio_clips_per_s']} "
            f"clips/s, text {row['text_captions_per_s']} captions/s, one clip + one caption "
            f"{row['clips_per_s_one_caption_each']}/s, peak {show_gib(row['peak_gib'])}"
        )
        del model
        free_memory(device)
        return row

    guarded(report, "clap", f"clap b{batch}", gpu_row)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke test)")
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument(
        "--only", action="append", choices=PARTS, help="run only this part (repeatable)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    started = time.perf_counter()
    torch.manual_seed(0)
    if device.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    meta: dict[str, Any] = {
        "script": "benchmarks/device_llm_rates.py",
        "tiny": args.tiny,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "dtype": str(DTYPE).removeprefix("torch."),
        "note": "random weights; static-batch transformers generate (lower bound vs vLLM)",
    }
    if device.type == "cuda":
        meta["gpu_total_gib"] = gib(torch.cuda.get_device_properties(device).total_memory)
    log(f"device_llm_rates: {json.dumps(meta)}")
    report = Report(args.json, meta)
    report.save()
    parts = args.only or list(PARTS)
    # CLAP first: seconds, and the LLM runs are the ones a time limit would cut short
    runners = {"clap": bench_clap, "audio_llm": bench_audio_llm, "fusion": bench_fusion}
    for name in ("clap", "audio_llm", "fusion"):
        if name not in parts:
            continue
        part_started = time.perf_counter()
        try:
            runners[name](args, device, report)
        except Exception as exc:
            report.part(name)["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            log(f"!! {name} failed: {report.part(name)['error']}")
            traceback.print_exc(limit=3, file=sys.stdout)
            free_memory(device)
        report.part(name)["part_s"] = round(time.perf_counter() - part_started, 1)
        report.save()
        log(f"== {name} done in {time.perf_counter() - part_started:.1f} s")
    report.data["meta"]["total_s"] = round(time.perf_counter() - started, 1)
    report.save()
    log(
        f"total {time.perf_counter() - started:.1f} s"
        + (f"; JSON: {args.json}" if args.json else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
