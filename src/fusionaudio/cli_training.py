"""Commands that use the captions: train-clap, eval-retrieval, zero-shot.

Model code (torch) is imported inside each command, so that ``fusionaudio --help`` and
the other commands stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from fusionaudio.store.atomic import atomic_write_text
from fusionaudio.training.pairs import Loaded, read_classes, read_data
from fusionaudio.training.retrieval_metrics import RECALL_AT

METRICS = [f"R@{k}" for k in RECALL_AT] + ["mAP@10"]


class _Bars:
    """One rich bar per phase ("features", "train", …), created when first reported."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description:>20}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=quiet,
        )  # fmt: skip
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(what, total=total)
        self.progress.update(self.tasks[what], completed=done, total=total)


def _report_skipped(console: Console, loaded: Loaded) -> None:
    if loaded.skipped:
        console.print(f"[yellow]{len(loaded.skipped)} of {loaded.rows} rows skipped[/]")
        for where, why in loaded.skipped[:5]:
            console.print(f"  {where}: {why}")


def _write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is not None:
        atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


root_option = click.option(
    "--root", type=click.Path(path_type=Path), default=None,
    help="audio must lie inside this folder (default: the caption file's folder)",
)  # fmt: skip
outside_option = click.option(
    "--allow-outside-root", is_flag=True, help="accept audio paths outside --root"
)


@click.command("train-clap")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="CKPT_DIR")
@click.option("--config", "config_path", type=click.Path(exists=True, path_type=Path))
@click.option("--epochs", type=int, default=None, help="override the config's epochs")
@click.option("--family", default=None, help="override the config's family (offline | paper)")
@click.option(
    "--include", multiple=True, help="also train on run records of this status (filtered, …)"
)
@root_option
@outside_option
@click.option("--quiet", is_flag=True, help="no progress bars")
def train_clap_command(
    data: tuple[Path, ...],
    out_dir: Path,
    config_path: Path | None,
    epochs: int | None,
    family: str | None,
    include: tuple[str, ...],
    root: Path | None,
    allow_outside_root: bool,
    quiet: bool,
) -> None:
    """Train a CLAP-style audio-text model on run folders and/or caption files (DATA)."""
    from fusionaudio.training.train import ResumeMismatch, train
    from fusionaudio.training.train_config import load_train_config

    console = Console(stderr=True)
    overrides: dict[str, Any] = {}
    if epochs is not None:
        overrides["epochs"] = epochs
    if family is not None:
        overrides["family"] = family
    try:
        config = load_train_config(config_path, overrides)
        if include:
            config = config.model_copy(update={"statuses": [*config.statuses, *include]})
        loaded = read_data(data, frozenset(config.statuses), root, allow_outside_root)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    _report_skipped(console, loaded)
    bars = _Bars(console, quiet)
    try:
        with bars.progress:
            result = train(loaded, out_dir, config, [str(d) for d in data], bars)
    except (ValueError, ResumeMismatch) as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table(title=f"{out_dir} (best epoch {result.best_epoch} on validation)")
    table.add_column("validation")
    for name in METRICS:
        table.add_column(name, justify="right")
    for direction, metrics in result.best.items():
        table.add_row(direction, *(f"{metrics[m]:.3f}" for m in METRICS))
    console.print(table)
    resumed = f", resumed at step {result.resumed_from_step}" if result.resumed_from_step else ""
    console.print(
        f"{result.train_clips} clips trained, {result.val_clips} validated; "
        f"{result.steps} steps{resumed}; {result.clips_per_s:.1f} clips/s"
    )


@click.command("eval-retrieval")
@click.argument("checkpoint", metavar="CKPT")
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--device", default="cpu", show_default=True)
@root_option
@outside_option
def eval_retrieval_command(
    checkpoint: str,
    data_path: Path,
    json_path: Path | None,
    device: str,
    root: Path | None,
    allow_outside_root: bool,
) -> None:
    """Text-to-audio and audio-to-text R@1/5/10 and mAP@10 of CKPT (or pseudo_clap)."""
    from fusionaudio.training.evaluate import load_embedder, retrieval

    console = Console(stderr=True)
    try:
        loaded = read_data([data_path], root=root, allow_outside_root=allow_outside_root)
        embedder = load_embedder(checkpoint, device=device)
        result = retrieval(embedder, loaded.items)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    _report_skipped(console, loaded)
    table = Table(title=f"{checkpoint} on {data_path.name}")
    table.add_column("direction")
    for name in METRICS:
        table.add_column(name, justify="right")
    for direction in ("text_to_audio", "audio_to_text"):
        table.add_row(direction, *(f"{result[direction][m]:.3f}" for m in METRICS))
    Console().print(table)
    console.print(
        f"{result['clips']} clips read ({result['unreadable']} unreadable, "
        f"{len(loaded.skipped)} rows skipped), {result['texts']} distinct captions"
    )
    _write_json(json_path, {**result, "rows": loaded.rows, "skipped_rows": len(loaded.skipped)})


@click.command("zero-shot")
@click.argument("checkpoint", metavar="CKPT")
@click.option("--classes", "classes_path", required=True,
              type=click.Path(exists=True, path_type=Path), help="class,description")  # fmt: skip
@click.option("--data", "data_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="path,class (ESC-50's filename,category too)")  # fmt: skip
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--device", default="cpu", show_default=True)
@root_option
@outside_option
def zero_shot_command(
    checkpoint: str,
    classes_path: Path,
    data_path: Path,
    json_path: Path | None,
    device: str,
    root: Path | None,
    allow_outside_root: bool,
) -> None:
    """Zero-shot classification accuracy of CKPT (or pseudo_clap) from class prompts."""
    from fusionaudio.training.evaluate import classification, load_embedder

    console = Console(stderr=True)
    try:
        classes = read_classes(classes_path)
        loaded = read_data([data_path], root=root, allow_outside_root=allow_outside_root,
                           require_texts=False)  # fmt: skip
        result = classification(load_embedder(checkpoint, device=device), loaded.items, classes)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    _report_skipped(console, loaded)
    out = Console()
    out.print(
        f"top-1 {result['top1']:.3f}  top-5 {result['top5']:.3f}  on {result['clips']} clips "
        f"of {result['classes']} classes"
    )
    mistakes = sorted(
        (p for p in result["confusion"] if p["class"] != p["predicted"]), key=lambda p: -p["count"]
    )
    if mistakes:
        table = Table(title="most frequent confusions")
        for column in ("class", "predicted", "count"):
            table.add_column(column)
        for pair in mistakes[:15]:
            table.add_row(pair["class"], pair["predicted"], str(pair["count"]))
        out.print(table)
    if result["unknown_classes"]:
        console.print(f"[yellow]labels not in --classes: {', '.join(result['unknown_classes'])}[/]")
    _write_json(json_path, result)
