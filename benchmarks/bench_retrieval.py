"""The paper's claim in miniature: does a retrieval model trained on the pipeline's
captions beat one trained on label-only texts?

On the labelled recordings in ../shared/data/sounds (run through the offline pipeline
first), the offline family is trained with one recipe and seed on the same clips with
different texts:

  (a1) label-only, from the dataset's class name: "the sound of dog bark"
       (keyword-to-caption, LAION-Audio-630K's baseline; an oracle label no user has)
  (a2) label-only, from the pipeline's own tagger: "the sound of dog and domestic animals"
       (what a user without labels can write from AudioSet tags)
  (b)  the pipeline's captions (status ok)

and evaluated with cross-validation by source package (no package on both sides) on
text-to-audio / audio-to-text retrieval against the reference captions and on zero-shot
classification with the class prompts. Floors: the offline proxy scorer (pseudo_clap) and
an untrained model (random projections). Prints the table and the training speed.

Usage:
  python benchmarks/bench_retrieval.py [--run RUN_DIR] [--folds 5] [--epochs 30]
                                       [--json OUT.json]
Without --run, the pipeline runs first into runs/bench_retrieval/run (about 20-30 min on
2 cores; a resumed run reuses its cache).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SOUNDS = REPO.parent / "shared" / "data" / "sounds"
TEXTS = ("a1_class_labels", "a2_tagger_labels", "b_pipeline_captions")
# The offline family's two heads: random projections, or residual on the proxy (the default)
HEADS = {"random head": {"prior": False}, "prior head": {"prior": True}}
ARMS = ("untrained", "pseudo_clap", *(f"{t} ({h})" for h in HEADS for t in TEXTS))


def _pipeline_run(run_dir: Path) -> None:
    if (run_dir / "results.jsonl").is_file():
        return
    command = [sys.executable, "-m", "fusionaudio", "run", str(SOUNDS / "clips"), "--out",
               str(run_dir), "--quiet"]  # fmt: skip
    subprocess.run(command, check=True)


def _clips(run_dir: Path) -> list[dict[str, Any]]:
    """Each labelled clip with its reference, its package and what the run said about it."""
    records = {}
    with (run_dir / "results.jsonl").open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            records[Path(record["source"]).resolve()] = record
    clips = []
    with (SOUNDS / "labels.jsonl").open(encoding="utf-8") as f:
        for line in f:
            label = json.loads(line)
            path = (SOUNDS / label["path"]).resolve()
            record = records.get(path)
            if record is None:
                continue
            tags = record.get("cues", {}).get("tagging", {}).get("output", {}).get("top_tags", [])
            clips.append(
                {
                    "path": path, "class": label["class"], "reference": label["caption"],
                    "package": label["package"], "status": record["status"],
                    "caption": (record.get("caption") or {}).get("text"),
                    "tags": [t["label"] for t in tags[:2]],
                }
            )  # fmt: skip
    return clips


def _folds(clips: list[dict[str, Any]], count: int) -> list[list[dict[str, Any]]]:
    """Packages assigned largest first to the smallest fold: no package on two sides."""
    by_package: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for clip in clips:
        by_package[clip["package"]].append(clip)
    folds: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for package in sorted(by_package, key=lambda p: (-len(by_package[p]), p)):
        min(folds, key=len).extend(by_package[package])
    return folds


def _texts(arm: str, clip: dict[str, Any]) -> tuple[str, ...]:
    if arm == "a1_class_labels":
        return (f"the sound of {clip['class'].replace('_', ' ')}",)
    if arm == "a2_tagger_labels":
        return ("the sound of " + " and ".join(t.lower() for t in clip["tags"]),)
    return (clip["caption"],)


def _items(clips: list[dict[str, Any]], texts: Any) -> list[Any]:
    from fusionaudio.training.pairs import AudioTexts, clip_key

    return [
        AudioTexts(
            clip_key(c["path"], 0.0, None),
            c["path"],
            0.0,
            None,
            texts(c),
            c["package"] + ":" + str(c["path"]),
            c["class"],
        )
        for c in clips
    ]


def _evaluate(embedder: Any, test: list[dict[str, Any]], classes: dict[str, str]) -> dict[str, Any]:
    from fusionaudio.training.evaluate import classification, retrieval

    references = _items(test, lambda c: (c["reference"],))
    found = retrieval(embedder, references)
    shot = classification(embedder, references, classes)
    return {
        "t2a": found["text_to_audio"], "a2t": found["audio_to_text"],
        "top1": shot["top1"], "top5": shot["top5"], "clips": found["clips"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=REPO / "runs" / "bench_retrieval" / "run")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--json", type=Path, default=REPO / "runs" / "bench_retrieval" / "result.json"
    )
    args = parser.parse_args()

    from fusionaudio.clap.families import FAMILIES
    from fusionaudio.training.evaluate import ModelEmbedder, PseudoClapEmbedder
    from fusionaudio.training.pairs import Loaded, read_classes
    from fusionaudio.training.train import train
    from fusionaudio.training.train_config import TrainConfig

    _pipeline_run(args.run)
    every = _clips(args.run)
    clips = [c for c in every if c["status"] == "ok" and c["caption"]]
    classes = read_classes(SOUNDS / "classes.csv")
    folds = _folds(clips, args.folds)
    print(f"{len(every)} labelled clips in the run, {len(clips)} with a pipeline caption "
          f"(status ok); {args.folds} folds by package: {[len(f) for f in folds]}")  # fmt: skip

    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    speeds: dict[str, list[float]] = defaultdict(list)
    eval_seconds: list[float] = []
    proxy = PseudoClapEmbedder()
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "features"
        recipes = {
            head: TrainConfig(epochs=args.epochs, batch_size=32, feature_cache=cache, seed=0,
                              family_options=options)
            for head, options in HEADS.items()
        }  # fmt: skip
        recipe = recipes["random head"]
        for number, test in enumerate(folds):
            train_clips = [c for i, f in enumerate(folds) if i != number for c in f]
            started = time.perf_counter()
            results["pseudo_clap"].append(_evaluate(proxy, test, classes))
            eval_seconds.append(time.perf_counter() - started)
            import torch

            torch.manual_seed(recipe.seed)
            untrained = FAMILIES["offline"].build({"prior": False}).eval()
            results["untrained"].append(_evaluate(ModelEmbedder(untrained, cache), test, classes))
            for arm in ARMS[2:]:
                texts, head = arm.split(" (")
                items = _items(train_clips, lambda c, texts=texts: _texts(texts, c))
                out = Path(scratch) / f"{texts}-{head[:-1].replace(' ', '_')}-{number}"
                outcome = train(
                    Loaded(items=items, rows=len(items)), out, recipes[head[:-1]], [arm]
                )
                speeds[arm].append(outcome.clips_per_s)
                model = FAMILIES["offline"].from_pretrained(out)
                results[arm].append(_evaluate(ModelEmbedder(model, cache), test, classes))
                print(f"fold {number + 1}: {arm}: best epoch {outcome.best_epoch}, "
                      f"t2a R@1 {results[arm][-1]['t2a']['R@1']:.3f}, "
                      f"zero-shot {results[arm][-1]['top1']:.3f}", flush=True)  # fmt: skip

    def mean(arm: str, key: str, sub: str | None = None) -> float:
        rows = results[arm]
        weights = np.array([r["clips"] for r in rows], dtype=float)
        values = np.array([r[key][sub] if sub else r[key] for r in rows])
        return float((values * weights).sum() / weights.sum())

    table = {
        arm: {
            "t2a_R@1": mean(arm, "t2a", "R@1"), "t2a_R@5": mean(arm, "t2a", "R@5"),
            "a2t_R@1": mean(arm, "a2t", "R@1"), "a2t_R@5": mean(arm, "a2t", "R@5"),
            "t2a_mAP@10": mean(arm, "t2a", "mAP@10"),
            "zero_shot_top1": mean(arm, "top1"), "zero_shot_top5": mean(arm, "top5"),
        }
        for arm in ARMS
    }  # fmt: skip
    print()
    print("| texts trained on | T→A R@1 | T→A R@5 | A→T R@1 | A→T R@5 | T→A mAP@10 | "
          "zero-shot top-1 | top-5 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for arm, row in table.items():
        print(f"| {arm} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")
    speed = {arm: float(np.mean(v)) for arm, v in speeds.items()}
    print()
    print("training clips/s (features cached): "
          + ", ".join(f"{arm} {v:.0f}" for arm, v in speed.items()))  # fmt: skip
    print(f"pseudo_clap evaluation per fold: {np.mean(eval_seconds):.1f} s "
          f"({np.mean([len(f) for f in folds]):.0f} clips, retrieval + zero-shot)")  # fmt: skip
    payload = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "clips": len(clips), "folds": [len(f) for f in folds], "epochs": args.epochs,
        "table": table, "train_clips_per_s": speed, "per_fold": results,
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
