"""Contrastive training of an audio-text dual encoder, resumable after a kill.

Layout of ``CKPT_DIR``: the best model so far (chosen on validation, never on test data)
as a loadable checkpoint folder with its ``model_card.md``, and ``training/`` with the
resumable state (``state.pt``), the per-epoch log (``metrics.jsonl``) and the split
(``split.json``). Batch order, SpecAugment masks and dropout are seeded from the step, so
a resumed training takes exactly the steps an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusionaudio.clap.checkpoint import TRAINING_DIR
from fusionaudio.clap.families import FAMILIES
from fusionaudio.clap.model import AudioFeatures, DualEncoder, SpecAugment
from fusionaudio.media.errors import MediaError, short_reason
from fusionaudio.store.atomic import atomic_write_bytes, atomic_write_text
from fusionaudio.training.evaluate import ModelEmbedder, retrieval
from fusionaudio.training.features import FeatureStore
from fusionaudio.training.loss import contrastive_loss, positives
from fusionaudio.training.pairs import AudioTexts, Loaded, split_by_group
from fusionaudio.training.train_config import TrainConfig

#: (what, done, total) — "features" while caching clip features, "train" per step
Progress = Callable[[str, int, int], None]


class ResumeMismatch(RuntimeError):
    """``CKPT_DIR`` holds a training of other data or another recipe."""


@dataclass(frozen=True)
class TrainResult:
    out: Path
    steps: int
    epochs: int
    best_epoch: int
    best: dict[str, Any]
    train_clips: int
    val_clips: int
    resumed_from_step: int
    clips_per_s: float


def _data_hash(items: list[AudioTexts]) -> str:
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.key):
        digest.update(json.dumps([item.key, list(item.texts)]).encode())
    return digest.hexdigest()[:16]


def _epoch_batches(count: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
    batches = [order[i : i + batch_size].tolist() for i in range(0, count, batch_size)]
    return [b for b in batches if len(b) >= 2]  # a lone clip has nothing to contrast with


def _schedule(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _selection_score(metrics: dict[str, dict[str, float]]) -> float:
    """Mean R@1 of both directions; mAP@10 breaks ties."""
    t2a, a2t = metrics["text_to_audio"], metrics["audio_to_text"]
    return (t2a["R@1"] + a2t["R@1"]) / 2 + 1e-3 * (t2a["mAP@10"] + a2t["mAP@10"]) / 2


def _usable(
    items: list[AudioTexts], store: FeatureStore, progress: Progress | None, what: str
) -> tuple[list[AudioTexts], dict[str, AudioFeatures], list[tuple[str, str]]]:
    """Features of every readable clip (kept in memory for deterministic families)."""
    kept, cached, failed = [], {}, []
    for done, item in enumerate(items, 1):
        try:
            features = store.get(item)
        except (MediaError, OSError) as exc:
            failed.append((str(item.path), short_reason(exc)))
        else:
            kept.append(item)
            if store.folder is not None:
                cached[item.key] = features
        if progress is not None:
            progress(what, done, len(items))
    return kept, cached, failed


def _accelerator(config: TrainConfig) -> Any:
    from accelerate import Accelerator

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if device.startswith("cuda") else "fp32"
    mixed = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[precision]
    return Accelerator(cpu=device == "cpu", mixed_precision=mixed)


def train(
    data: Loaded,
    out: Path,
    config: TrainConfig,
    sources: list[str],
    progress: Progress | None = None,
) -> TrainResult:
    if config.family not in FAMILIES:
        raise ValueError(f"unknown family {config.family!r}; known: {sorted(FAMILIES)}")
    torch.manual_seed(config.seed)
    model: DualEncoder = FAMILIES[config.family].build(dict(config.family_options))
    state_dir = out / TRAINING_DIR
    state_path = state_dir / "state.pt"
    store = FeatureStore(model, config.feature_cache)

    train_items, val_items = split_by_group(data.items, config.val_fraction, config.seed)
    train_items, train_features, train_failed = _usable(train_items, store, progress, "features")
    val_items, _, val_failed = _usable(val_items, store, progress, "validation features")
    if len(train_items) < 2 or len(val_items) < 2:
        raise ValueError(
            f"too few readable clips: {len(train_items)} to train, {len(val_items)} to validate"
        )

    accelerator = _accelerator(config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = len(_epoch_batches(len(train_items), config.batch_size, config.seed, 0))
    total_steps = per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _schedule(s, config.warmup_steps, total_steps)
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    core: DualEncoder = accelerator.unwrap_model(model)
    augment = SpecAugment(**config.spec_augment.model_dump()) if config.spec_augment else None

    identity = {"recipe": config.recipe_hash(), "data": _data_hash(train_items + val_items)}
    epoch, next_batch, step = 0, 0, 0
    best: dict[str, Any] = {"score": -1.0, "epoch": -1, "metrics": {}}
    history: list[dict[str, Any]] = []
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state["identity"] != identity:
            raise ResumeMismatch(
                f"{out} holds a training of other data or another recipe "
                f"({state['identity']} here, {identity} now); use a new --out"
            )
        core.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        epoch, next_batch, step = state["epoch"], state["batch"], state["step"]
        best, history = state["best"], state["history"]
    resumed_from = step
    split = {"train": [i.key for i in train_items], "validation": [i.key for i in val_items]}
    atomic_write_text(state_dir / "split.json", json.dumps(split, indent=1) + "\n")

    def save_state(at_epoch: int, at_batch: int) -> None:
        if not accelerator.is_main_process:
            return
        state = {
            "identity": identity, "epoch": at_epoch, "batch": at_batch, "step": step,
            "model": {k: v.detach().cpu() for k, v in _trainable_state(core).items()},
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "best": best, "history": history,
        }  # fmt: skip
        buffer = _to_bytes(state)
        atomic_write_bytes(state_path, buffer)

    text_memo: dict[str, torch.Tensor] = {}
    busy, trained_clips = 0.0, 0
    world, rank = accelerator.num_processes, accelerator.process_index
    while epoch < config.epochs:
        batches = _epoch_batches(len(train_items), config.batch_size, config.seed, epoch)
        batches = batches[: len(batches) - len(batches) % world] if world > 1 else batches
        model.train()
        losses: list[float] = []
        epoch_clips = 0
        started = time.perf_counter()
        for number in range(next_batch, len(batches)):
            if number % world != rank:
                continue
            torch.manual_seed(config.seed * 1_000_003 + step)  # dropout, reproducible on resume
            clips = [train_items[i] for i in batches[number]]
            features = [train_features.get(c.key) or store.get(c) for c in clips]
            generator = torch.Generator().manual_seed(config.seed + step)
            audio = core.collate_audio(features, augment, generator)
            texts, mask = positives([c.texts for c in clips])
            text = core.text_inputs(texts, text_memo)
            with accelerator.autocast():
                audio_emb, text_emb, scale = model(audio, text)
                loss = contrastive_loss(audio_emb.float(), text_emb.float(), scale.float(), mask)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(trainable, config.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            core.clamp_logit_scale()
            step += 1
            losses.append(float(loss.detach()))
            epoch_clips += len(clips)
            if progress is not None:
                progress("train", step, total_steps)
            if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0:
                save_state(epoch, number + 1)
        elapsed = time.perf_counter() - started
        busy += elapsed
        trained_clips += epoch_clips

        validation = _validate(core, val_items, store, text_memo, config.eval_batch_size)
        score = _selection_score(validation)
        record = {
            "epoch": epoch + 1, "step": step,
            "train_loss": float(np.mean(losses)) if losses else None,
            "lr": scheduler.get_last_lr()[0],
            "temperature": float(1.0 / core.logit_scale.detach().exp()),
            "validation": validation, "selection_score": round(score, 6),
            "clips_per_s": round(epoch_clips / elapsed, 2) if elapsed > 0 else None,
        }  # fmt: skip
        history.append(record)
        if score > best["score"] and accelerator.is_main_process:
            best = {"score": score, "epoch": epoch + 1, "metrics": validation}
            _publish_best(core, out, _card_context(config, sources, data, train_items, val_items,
                                                   train_failed + val_failed, best, step))  # fmt: skip
        epoch, next_batch = epoch + 1, 0
        save_state(epoch, 0)
        if accelerator.is_main_process:
            lines = "".join(json.dumps(r) + "\n" for r in history)
            atomic_write_text(state_dir / "metrics.jsonl", lines)
    accelerator.wait_for_everyone()
    return TrainResult(
        out=out, steps=step, epochs=config.epochs, best_epoch=best["epoch"],
        best=best["metrics"], train_clips=len(train_items), val_clips=len(val_items),
        resumed_from_step=resumed_from,
        clips_per_s=trained_clips / busy if busy > 0 else 0.0,
    )  # fmt: skip


def _trainable_state(model: DualEncoder) -> dict[str, torch.Tensor]:
    method = getattr(model, "trainable_state", None)
    state: dict[str, torch.Tensor] = method() if method is not None else model.state_dict()
    return state


def _to_bytes(state: dict[str, Any]) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _validate(
    model: DualEncoder,
    items: list[AudioTexts],
    store: FeatureStore,
    memo: dict[str, torch.Tensor],
    batch_size: int,
) -> dict[str, dict[str, float]]:
    embedder = ModelEmbedder(model, batch_size=batch_size, store=store, text_memo=memo)
    metrics = retrieval(embedder, items)
    return {
        direction: {k: round(v, 4) for k, v in metrics[direction].items()}
        for direction in ("text_to_audio", "audio_to_text")
    }


def _card_context(
    config: TrainConfig,
    sources: list[str],
    data: Loaded,
    train_items: list[AudioTexts],
    val_items: list[AudioTexts],
    failed: list[tuple[str, str]],
    best: dict[str, Any],
    step: int,
) -> dict[str, Any]:
    return {
        "config": config.model_dump(mode="json"), "sources": sources, "rows": data.rows,
        "skipped": len(data.skipped), "unreadable": len(failed),
        "train_clips": len(train_items), "val_clips": len(val_items),
        "train_texts": sum(len(i.texts) for i in train_items), "best": best, "step": step,
    }  # fmt: skip


def _publish_best(model: DualEncoder, out: Path, context: dict[str, Any]) -> None:
    """Write the model beside its final place, then move each entry in (one rename each)."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".best-tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    (staging / "model_card.md").write_text(model_card(model, context), encoding="utf-8")
    for entry in staging.iterdir():
        target = out / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()


def model_card(model: DualEncoder, context: dict[str, Any]) -> str:
    describe = model.describe()
    best = context["best"]
    rows = []
    for direction, metrics in best["metrics"].items():
        rows.append(f"| {direction} | " + " | ".join(f"{metrics[k]:.3f}" for k in
                    ("R@1", "R@5", "R@10", "mAP@10")) + " |")  # fmt: skip
    config = context["config"]
    return "\n".join(
        [
            f"# fusionaudio CLAP-style model ({describe['family']} family)",
            "",
            "Trained with `fusionaudio train-clap`: symmetric InfoNCE (several positives per "
            "clip), learnable temperature from 0.07, AdamW with warm-up and cosine decay, "
            "gradient clipping, SpecAugment on the audio features.",
            "",
            "## Architecture",
            "",
            f"- audio: {describe['audio']}",
            f"- text: {describe['text']}",
            "",
            "## Data",
            "",
            *[f"- `{s}`" for s in context["sources"]],
            "",
            f"{context['rows']} rows read, {context['skipped']} skipped (status, no caption, "
            f"missing audio), {context['unreadable']} unreadable; "
            f"{context['train_clips']} clips ({context['train_texts']} texts) trained on, "
            f"{context['val_clips']} held out for validation (split by source file).",
            "",
            "## Recipe",
            "",
            "```json",
            json.dumps(config, indent=2),
            "```",
            "",
            f"## Validation (best epoch {best['epoch']}, step {context['step']})",
            "",
            "| direction | R@1 | R@5 | R@10 | mAP@10 |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Validation chose this checkpoint; report test numbers with `fusionaudio "
            "eval-retrieval` on data it never saw.",
            "",
        ]
    )
