"""CLAP-style training, evaluation and the trained scorer, on the real labelled recordings."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fusionaudio.training.loss import contrastive_loss, positives
from fusionaudio.training.pairs import read_caption_file, read_classes, read_data, split_by_group
from fusionaudio.training.retrieval_metrics import ranking_metrics, two_way, zero_shot
from tests.real_sounds import SOUNDS, labelled_clips

LABELS = SOUNDS / "labels.jsonl"
CLASSES = SOUNDS / "classes.csv"


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fusionaudio", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clap_features")


@pytest.fixture(scope="module")
def train_yaml(tmp_path_factory: pytest.TempPathFactory, feature_cache: Path) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "train.yaml"
    recipe = {"epochs": 12, "batch_size": 32, "feature_cache": str(feature_cache)}
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def offline_checkpoint(tmp_path_factory: pytest.TempPathFactory, train_yaml: Path) -> Path:
    """The offline family trained through the CLI on the recordings' reference captions."""
    out = tmp_path_factory.mktemp("ckpt") / "offline"
    done = _cli(
        "train-clap", str(LABELS), "--out", str(out), "--config", str(train_yaml), "--quiet"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


# --- metrics, loss and data: exact values ---------------------------------------------------


def test_ranking_metrics_match_a_hand_computed_matrix() -> None:
    similarity = np.array(
        [[0.9, 0.1, 0.5, 0.2],  # relevant 0: rank 1
         [0.8, 0.3, 0.7, 0.1],  # relevant 1: rank 3
         [0.2, 0.6, 0.4, 0.9]]  # relevant 0 and 2: ranks 4 and 3
    )  # fmt: skip
    relevant = np.zeros_like(similarity, dtype=bool)
    relevant[0, 0] = relevant[1, 1] = relevant[2, 0] = relevant[2, 2] = True
    metrics = ranking_metrics(similarity, relevant)
    assert metrics["R@1"] == pytest.approx(1 / 3)
    assert metrics["R@5"] == metrics["R@10"] == 1.0
    ap = [1.0, 1 / 3, (1 / 3 + 2 / 4) / 2]
    assert metrics["mAP@10"] == pytest.approx(sum(ap) / 3)

    scores = zero_shot(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.4]]), np.array([1, 1, 1]))
    assert scores["top1"] == pytest.approx(2 / 3) and scores["top5"] == 1.0
    assert scores["confusion"].tolist() == [[0, 0], [1, 2]]  # type: ignore[union-attr]


def test_two_way_transposes_for_audio_to_text() -> None:
    audio = np.eye(3)
    text = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    positive = np.array([[True, False, False], [False, True, False], [False, False, True]])
    metrics = two_way(audio, text, positive)
    assert metrics["text_to_audio"]["R@1"] == pytest.approx(1 / 3)
    assert metrics["audio_to_text"]["R@1"] == pytest.approx(1 / 3)


def test_loss_is_clip_cross_entropy_with_one_positive_and_shares_repeated_texts() -> None:
    torch.manual_seed(0)
    audio = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    text = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    texts, mask = positives([("a",), ("b",), ("c",), ("d",)])
    logits = 10.0 * audio @ text.T
    target = torch.arange(4)
    clip = 0.5 * (
        torch.nn.functional.cross_entropy(logits, target)
        + torch.nn.functional.cross_entropy(logits.T, target)
    )
    assert contrastive_loss(audio, text, torch.tensor(10.0), mask) == pytest.approx(float(clip))

    texts, mask = positives([("dog",), ("dog", "a dog barks"), ("rain",)])
    assert texts == ["dog", "a dog barks", "rain"]
    assert mask.tolist() == [[True, False, False], [True, True, False], [False, False, True]]


def _copy(clip: Path, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip, folder / clip.name)
    return clip.name


def test_caption_files_in_the_common_layouts(tmp_path: Path) -> None:
    clips = labelled_clips()[:3]
    names = [_copy(c.path, tmp_path / "audio") for c in clips]
    clotho = tmp_path / "clotho.csv"
    clotho.write_text(
        "file_name,caption_1,caption_2\n"
        + "".join(f"audio/{n},first of {n},second of {n}\n" for n in names)
        + "audio/missing.wav,lost,lost\n",
        encoding="utf-8",
    )
    loaded = read_caption_file(clotho)
    assert [len(i.texts) for i in loaded.items] == [2, 2, 2]
    assert loaded.rows == 4 and "not found" in loaded.skipped[0][1]

    audiocaps = tmp_path / "captions.jsonl"  # one caption per row, several rows per clip
    rows = [{"path": f"audio/{names[0]}", "caption": t} for t in ("one", "two", "one")]
    rows.append({"path": f"audio/{names[1]}", "captions": ["x", "y"]})
    audiocaps.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    merged = read_caption_file(audiocaps)
    assert [i.texts for i in merged.items] == [("one", "two"), ("x", "y")]

    meta = tmp_path / "meta"  # ESC-50: meta/esc50.csv names files kept in audio/
    meta.mkdir()
    (meta / "esc50.csv").write_text(
        "filename,category\n"
        + "".join(f"{n},{c.label}\n" for n, c in zip(names, clips, strict=True)),
        encoding="utf-8",
    )
    refused = read_caption_file(meta / "esc50.csv", require_texts=False)
    assert not refused.items and all("outside" in why for _, why in refused.skipped)
    esc = read_caption_file(meta / "esc50.csv", root=tmp_path, require_texts=False)
    assert [i.label for i in esc.items] == [c.label for c in clips]


def test_split_keeps_source_files_together_whatever_the_order() -> None:
    items = read_data([LABELS]).items
    train, val = split_by_group(items, 0.2, seed=0)
    assert {i.group for i in train}.isdisjoint({i.group for i in val})
    assert 0.15 <= len(val) / len(items) <= 0.3
    again = split_by_group(list(reversed(items)), 0.2, seed=0)[1]
    assert {i.key for i in again} == {i.key for i in val}


# --- training on real audio --------------------------------------------------------------


def test_offline_training_learns_the_real_recordings(offline_checkpoint: Path) -> None:
    history = [
        json.loads(line)
        for line in (offline_checkpoint / "training" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(history) == 12
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]

    split = json.loads((offline_checkpoint / "training" / "split.json").read_text())
    by_key = {i.key: i for i in read_data([LABELS]).items}
    val = [by_key[k] for k in split["validation"]]
    texts = {t for i in val for t in i.texts}
    # a random ranking finds a caption's clip at rank 1 with probability (its clips) / (clips)
    chance = np.mean([sum(t in i.texts for i in val) / len(val) for t in texts])
    best = max(history, key=lambda r: r["selection_score"])
    assert best["validation"]["text_to_audio"]["R@1"] >= max(0.3, 3 * chance)
    assert best["validation"]["audio_to_text"]["R@1"] >= 0.3
    card = (offline_checkpoint / "model_card.md").read_text()
    assert "labels.jsonl" in card and f"best epoch {best['epoch']}" in card


def test_eval_and_zero_shot_give_the_checked_computation(
    offline_checkpoint: Path, tmp_path: Path
) -> None:
    from fusionaudio.clap.checkpoint import load_checkpoint
    from fusionaudio.training.evaluate import ModelEmbedder

    out = tmp_path / "retrieval.json"
    done = _cli(
        "eval-retrieval", str(offline_checkpoint), "--data", str(LABELS), "--json", str(out)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reported = json.loads(out.read_text())
    assert reported["clips"] == 118 and reported["unreadable"] == 0

    embedder = ModelEmbedder(load_checkpoint(offline_checkpoint))
    items = read_data([LABELS]).items
    audio, _, _ = embedder.embed_audio(items)
    texts = list(dict.fromkeys(t for i in items for t in i.texts))
    text = embedder.embed_texts(texts)
    positive = np.array([[t in i.texts for i in items] for t in texts])
    expected = ranking_metrics(text @ audio.T, positive)
    for name, value in expected.items():
        assert reported["text_to_audio"][name] == pytest.approx(value, abs=1e-6)

    out = tmp_path / "zero_shot.json"
    done = _cli(
        "zero-shot", str(offline_checkpoint), "--classes", str(CLASSES), "--data", str(LABELS),
        "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    shot = json.loads(out.read_text())
    classes = read_classes(CLASSES)
    prompts = embedder.embed_texts(list(classes.values()))
    truth = np.array([list(classes).index(str(i.label)) for i in items])
    assert shot["top1"] == pytest.approx(zero_shot(audio @ prompts.T, truth)["top1"])
    assert shot["clips"] == 118 and 0.0 <= shot["top5"] <= 1.0


def test_pseudo_clap_is_evaluated_the_same_way(tmp_path: Path) -> None:
    out = tmp_path / "proxy.json"
    done = _cli(
        "zero-shot", "pseudo_clap", "--classes", str(CLASSES), "--data", str(LABELS),
        "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    shot = json.loads(out.read_text())
    assert shot["clips"] == 118 and shot["top1"] > 3 / 50  # better than guessing among 50


def test_killed_training_resumes_to_the_same_step_count(
    tmp_path: Path, train_yaml: Path, offline_checkpoint: Path
) -> None:
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "fusionaudio", "train-clap", str(LABELS), "--out", str(out),
            "--config", str(train_yaml), "--quiet"]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = out / "training" / "state.pt"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if state.is_file() and torch.load(state, weights_only=False)["epoch"] >= 3:
            break
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = torch.load(state, weights_only=False)["step"]
    assert killed_at > 0

    done = _cli(
        "train-clap", str(LABELS), "--out", str(out), "--config", str(train_yaml), "--quiet"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed at step {killed_at}" in done.stderr
    resumed = torch.load(state, weights_only=False)
    uninterrupted = torch.load(offline_checkpoint / "training" / "state.pt", weights_only=False)
    assert resumed["step"] == uninterrupted["step"]
    assert len(resumed["history"]) == 12
    # seeded per step: the resumed run took the same steps and landed on the same weights
    for key, value in uninterrupted["model"].items():
        assert torch.allclose(resumed["model"][key], value, atol=1e-4), key

    other = train_yaml.parent / "other.yaml"
    other.write_text(train_yaml.read_text() + "lr: 0.01\n", encoding="utf-8")
    refused = _cli("train-clap", str(LABELS), "--out", str(out), "--config", str(other), "--quiet")
    assert refused.returncode != 0 and "another recipe" in refused.stderr


def test_trained_scorer_prefers_each_clips_own_caption(offline_checkpoint: Path) -> None:
    from fusionaudio.clap.scorer import CheckpointScorer
    from fusionaudio.training.features import clip_signal

    split = json.loads((offline_checkpoint / "training" / "split.json").read_text())
    by_key = {i.key: i for i in read_data([LABELS]).items}
    held_out = [by_key[k] for k in split["validation"]]
    scorer = CheckpointScorer(offline_checkpoint)
    scorer.setup()
    signals = [clip_signal(i, scorer.sample_rate) for i in held_out]
    wins = 0
    for index, item in enumerate(held_out):
        others = sorted({t for j in held_out for t in j.texts} - set(item.texts))
        scores = scorer.score([signals[index]] * (1 + len(others)), [item.texts[0], *others])
        wins += scores[0] > np.percentile(scores[1:], 80)
    assert wins / len(held_out) > 0.6


def test_paper_family_trains_and_reloads_through_the_same_code(tmp_path: Path) -> None:
    from transformers import ClapModel

    from fusionaudio.clap.checkpoint import load_checkpoint
    from fusionaudio.training.evaluate import ModelEmbedder
    from fusionaudio.training.train import train
    from fusionaudio.training.train_config import TrainConfig
    from tests.tiny_models import tiny_clap

    base = tiny_clap(tmp_path / "tiny")
    data = read_data([LABELS])
    data.items = data.items[:20]
    config = TrainConfig(
        family="paper", family_options={"model": str(base), "init": "random"},
        epochs=2, batch_size=8, warmup_steps=1,
    )  # fmt: skip
    result = train(data, tmp_path / "paper", config, [str(LABELS)])
    assert result.steps == 4 and result.best_epoch in (1, 2)
    loaded = load_checkpoint(tmp_path / "paper")
    assert type(loaded).__name__ == "PaperClap"
    assert ClapModel.from_pretrained(tmp_path / "paper", local_files_only=True) is not None
    embedder = ModelEmbedder(loaded)
    vectors, _, failed = embedder.embed_audio(data.items[:2])
    assert vectors.shape == (2, 16) and not failed
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_quality_stage_scores_with_a_checkpoint_and_rescores_after_retraining(
    offline_checkpoint: Path, captioned_run: Path, tmp_path: Path
) -> None:
    from fusionaudio.config import RunConfig
    from fusionaudio.pipeline.run import run

    run_dir = tmp_path / "run"
    shutil.copytree(captioned_run, run_dir)  # its cached cues, fusion included
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(offline_checkpoint, checkpoint)
    data = json.loads((captioned_run / "run.json").read_text())["config"]
    data["quality"].update(scorer="clap_checkpoint", model=str(checkpoint))
    config = RunConfig.model_validate(data)
    inputs = captioned_run.parent / "in"

    first = run(inputs, run_dir, config)
    assert first.stages["clap"].computed > 0 and first.stages["fusion"].computed == 0
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    scored = [r for r in records if r.get("caption")]
    assert scored
    for record in scored:
        assert -1.0 <= record["scores"]["clap"] <= 1.0
    from fusionaudio.store.stage_cache import StageCache

    assert StageCache(run_dir / "cache").count("clap") >= len(scored)

    assert run(inputs, run_dir, config).stages["clap"].computed == 0  # same weights: cached
    weights = checkpoint / "model.safetensors"
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    state["logit_scale"] = state["logit_scale"] + 0.5  # "retrained" in place, same path
    save_file(state, str(weights))
    again = run(inputs, run_dir, config)
    assert again.stages["clap"].computed == first.stages["clap"].computed
    assert again.stages["fusion"].computed == 0
