"""The command line: parse, call the library, show progress and a summary. Nothing else."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import cast

import click
from rich.console import Console
from rich.markup import escape
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

from fusionaudio import __version__
from fusionaudio.calibrate import calibrate, plot_precision_recall, read_ratings
from fusionaudio.cli_training import (
    eval_retrieval_command,
    train_clap_command,
    zero_shot_command,
)
from fusionaudio.config import PRESETS, ConfigError, RunConfig, load_config
from fusionaudio.dataset.export import EXPORT_FORMATS, ExportFormat, export, iter_results
from fusionaudio.inspect_run import cue_brief, read_report
from fusionaudio.malloc_arenas import limit_malloc_arenas
from fusionaudio.pipeline.graph import GraphError, build_stages
from fusionaudio.pipeline.run import RunLockedError, RunSummary, run
from fusionaudio.store.remote_folder import RemoteFolderError

EXIT_USAGE = 2


class _ProgressObserver:
    """Rich bars: one per step (per-stage counts) and an overall one with the ETA."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description:>10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._overall: TaskID | None = None
        self._lock = threading.Lock()

    def start(self, total: int, reused: int, steps: list[str]) -> None:
        todo = total - reused
        self._progress.start()
        self._overall = self._progress.add_task("clips", total=total, completed=reused)
        for step in steps:
            self._tasks[step] = self._progress.add_task(step, total=todo)

    def advance(self, step: str, count: int) -> None:
        with self._lock:
            self._progress.advance(self._tasks[step], count)

    def clip_done(self, status: str) -> None:
        with self._lock:
            if self._overall is not None:
                self._progress.advance(self._overall, 1)

    def finish(self) -> None:
        self._progress.stop()


def _fail(message: str) -> None:
    for line in message.splitlines() or [""]:  # one line per problem
        click.echo(f"fusionaudio: error: {line}", err=True)
    sys.exit(EXIT_USAGE)


def _summary_table(summary: RunSummary) -> Table:
    table = Table(title=f"run {summary.run_dir}", show_header=True)
    table.add_column("stage")
    table.add_column("computed", justify="right")
    table.add_column("cached", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("busy s", justify="right")
    for name, stage in summary.stages.items():
        table.add_row(
            name, str(stage.computed), str(stage.cached), str(stage.errors), f"{stage.busy_s:.2f}"
        )
    return table


@click.group()
@click.version_option(__version__, prog_name="fusionaudio")
def cli() -> None:
    """Fine-grained audio captions from expert cues (FusionAudio method)."""


@cli.command("run")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    help="run folder: a path, or a URI on an object store (s3://bucket/run, gs://…)",
)
@click.option("--preset", type=click.Choice(PRESETS), default=None, help="named configuration")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default=None, help="YAML config"
)
@click.option(
    "--retry-errors", is_flag=True, help="recompute clips whose earlier result was an error"
)
@click.option("--quiet", is_flag=True, help="no progress bars")
@click.option(
    "--root",
    "root",
    type=click.Path(path_type=Path),
    default=None,
    help="every input file must resolve inside this folder (inputs.root)",
)
@click.option(
    "--engine",
    "engine_kind",
    type=click.Choice(["local", "sequential", "ray"]),
    default=None,
    help="overrides engine.kind",
)
@click.option(
    "--ray-address", default=None, help="engine ray: a cluster to join (engine.ray_address)"
)
def run_command(
    input_path: Path,
    out_dir: str,
    preset: str | None,
    config_path: Path | None,
    retry_errors: bool,
    quiet: bool,
    root: Path | None,
    engine_kind: str | None,
    ray_address: str | None,
) -> None:
    """Caption every clip in INPUT (a folder, a media file, or a CSV/JSONL manifest)."""
    console = Console(stderr=True)
    try:
        config = load_config(config_path, preset)
        if root is not None:
            config = config.model_copy(
                update={"inputs": config.inputs.model_copy(update={"root": root})}
            )
        engine_update: dict[str, str] = {}
        if engine_kind is not None:
            engine_update["kind"] = engine_kind
        if ray_address is not None:
            engine_update["ray_address"] = ray_address
        if engine_update:
            data = config.model_dump(mode="json")
            data["engine"].update(engine_update)
            config = RunConfig.model_validate(data)
        observer = None if quiet else _ProgressObserver(console)
        summary = run(input_path, out_dir, config, observer=observer, retry_errors=retry_errors)
    except (ConfigError, GraphError, RunLockedError, RemoteFolderError) as exc:
        _fail(str(exc))
        return
    out = Console()
    out.print(_summary_table(summary))
    counts = summary.counts
    out.print(
        f"{summary.total} clips: {counts['ok']} ok, {counts['error']} error, "
        f"{counts['filtered']} filtered, {counts['uncertain']} uncertain; "
        f"{summary.reused} reused from an earlier run, {summary.processed} processed "
        f"in {summary.wall_s:.1f} s"
    )
    if summary.damaged_shard_lines:
        out.print(
            f"warning: {summary.damaged_shard_lines} damaged line(s) in "
            f"{summary.run_dir / 'shards'} could not be read; their clips were computed again"
        )
    if summary.remote is not None:
        out.print(f"results: {summary.remote.rstrip('/')}/results.jsonl")
        out.print(f"staging folder: {summary.run_dir}")
    else:
        out.print(f"results: {summary.run_dir / 'results.jsonl'}")


@cli.command("inspect")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--examples", default=5, show_default=True, help="records to show")
def inspect_command(run_dir: Path, examples: int) -> None:
    """Summarise a run folder: statuses, errors, and a few records."""
    try:
        report = read_report(run_dir, examples)
    except FileNotFoundError as exc:
        _fail(str(exc))
        return
    out = Console()
    counts = ", ".join(f"{n} {s}" for s, n in sorted(report.statuses.items()))
    out.print(f"[bold]{report.total} clips[/bold]: {counts}; {report.warnings} warnings")
    if report.run_info:
        out.print(
            f"preset {report.run_info['config'].get('preset')}, pipeline {report.run_info['pipeline_hash']}, "
            f"wall {report.run_info.get('wall_s')} s"
        )
    if report.errors:
        table = Table(title="errors", show_header=True)
        table.add_column("clips", justify="right")
        table.add_column("message")
        for message, n in report.errors.most_common(10):
            table.add_row(str(n), message)
        out.print(table)
    table = Table(title="records", show_header=True)
    table.add_column("clip_id")
    table.add_column("status")
    table.add_column("s", justify="right")
    table.add_column("cues")
    for record in report.examples:
        caption = record.get("caption")
        if caption is not None:
            score = record.get("scores", {}).get("clap")
            suffix = "" if score is None else f" (clap score {score:.3f})"
            out.print(
                f"[bold]{escape(record['clip_id'])}[/bold]: {escape(caption['text'] + suffix)}"
            )
        brief = "; ".join(
            f"{name}: {cue_brief(name, cue['output'])}" for name, cue in record["cues"].items()
        )
        duration = record.get("duration_s")
        table.add_row(
            record["clip_id"],
            record["status"],
            "" if duration is None else f"{duration:.1f}",
            brief or (record.get("error") or ""),
        )
    out.print(table)


@cli.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(EXPORT_FORMATS)),
    default="instruct",
    show_default=True,
    help="instruct: the paper's JSON; hf: a Hugging Face dataset folder with audio; "
    "webdataset: tar shards of KEY.flac + KEY.json",
)
@click.option(
    "--out", "out_path", type=click.Path(path_type=Path), default=None, help="output file or folder"
)
@click.option("--all", "include_all", is_flag=True, help="every clip, not only status ok")
@click.option(
    "--dataset", default="fusionaudio", show_default=True, help="the dataset name (instruct, hf)"
)
@click.option(
    "--shard-size", default=1000, show_default=True, help="clips per shard (hf, webdataset)"
)
@click.option("--sample-rate", type=int, default=None, help="resample the audio (hf, webdataset)")
def export_command(
    run_dir: Path,
    fmt: str,
    out_path: Path | None,
    include_all: bool,
    dataset: str,
    shard_size: int,
    sample_rate: int | None,
) -> None:
    """Export a run as a dataset: instruction JSON, JSONL, Parquet, hf or webdataset."""
    suffix = {
        "instruct": "instruct.json",
        "jsonl": "export.jsonl",
        "parquet": "export.parquet",
        "hf": "hf",
        "webdataset": "wds",
    }[fmt]
    out = out_path or run_dir / f"dataset.{suffix}"
    try:
        report = export(
            run_dir,
            cast(ExportFormat, fmt),
            out,
            None if include_all else frozenset({"ok"}),
            dataset,
            shard_size,
            sample_rate,
        )
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        _fail(str(exc))
        return
    for clip_id, why in report.skipped.items():
        click.echo(f"skipped {clip_id}: {why}", err=True)
    click.echo(
        f"wrote {report.rows} rows to {out} "
        f"({len(report.files)} file(s), {report.bytes_written / 1e6:.1f} MB)"
    )


@cli.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="HTML file")
@click.option("--gallery", default=12, show_default=True, help="clips per gallery")
@click.option("--seed", default=0, show_default=True, help="seed of the random gallery")
@click.option(
    "--link-audio",
    is_flag=True,
    help="link the gallery's audio by relative path instead of embedding it",
)
def report_command(
    run_dir: Path, out_path: Path | None, gallery: int, seed: int, link_audio: bool
) -> None:
    """Write a self-contained HTML report of a run, and report.json with every figure."""
    from fusionaudio.report import build_report

    try:
        files = build_report(run_dir, out_path, gallery, seed, embed_audio=not link_audio)
    except FileNotFoundError as exc:
        _fail(str(exc))
        return
    click.echo(f"wrote {files.html} and {files.json}")


@cli.command("calibrate")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--ratings",
    "ratings_paths",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="CSV/JSONL: clip_id and score (1-5) or label; repeat for several raters",
)
@click.option(
    "--combine",
    type=click.Choice(["mean", "majority"]),
    default="mean",
    show_default=True,
    help="several raters: mean score <= 2, or at least half say 1-2",
)
@click.option("--beta", default=1.05, show_default=True, help="F-beta's beta (the paper: 1.05)")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path),
    default=None,
    help="PNG (default RUN_DIR/calibration_pr.png)",
)
def calibrate_command(
    run_dir: Path,
    ratings_paths: tuple[Path, ...],
    combine: str,
    beta: float,
    plot_path: Path | None,
) -> None:
    """Choose the CLAP threshold that best separates rated hallucinations (F-beta)."""
    from fusionaudio.agreement import combine as combine_raters
    from fusionaudio.agreement import read_rating_file

    try:
        if len(ratings_paths) == 1:
            ratings = read_ratings(ratings_paths[0])
        else:
            rows = [r for path in ratings_paths for r in read_rating_file(path)]
            ratings = combine_raters(rows, combine)
        scores = {
            r["clip_id"]: float(r["scores"]["clap"])
            for r in iter_results(run_dir, None)
            if "clap" in r.get("scores", {})
        }
        result = calibrate(scores, ratings, beta)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
        return
    best = result.best
    plot = plot_path or run_dir / "calibration_pr.png"
    plot_precision_recall(result, plot)
    raters = f" ({len(ratings_paths)} raters, {combine})" if len(ratings_paths) > 1 else ""
    click.echo(
        f"{result.rated} rated clips with a score{raters}, {result.positives} notable "
        "hallucinations (score <= 2)"
    )
    click.echo(
        f"threshold {best.threshold:.4f}: F{beta:g} {best.f_beta:.3f}, precision {best.precision:.3f}, "
        f"recall {best.recall:.3f}, agreement {best.agreement:.3f}, filter rate {best.filter_rate:.3f}"
    )
    click.echo(
        f"set quality.thresholds.<scorer>: {best.threshold:.4f} in your config; plot: {plot}"
    )


@cli.command("rate")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="page folder"
)
@click.option("--sample", default=100, show_default=True, help="clips to rate")
@click.option("--seed", default=0, show_default=True)
@click.option("--link-audio", is_flag=True, help="link the audio instead of embedding it")
def rate_command(run_dir: Path, out_dir: Path, sample: int, seed: int, link_audio: bool) -> None:
    """Write a static rating page (open index.html in a browser; no server)."""
    from fusionaudio.dataset.rating_page import build_rating_page

    try:
        index = build_rating_page(run_dir, out_dir, sample, seed, embed_audio=not link_audio)
    except FileNotFoundError as exc:
        _fail(str(exc))
        return
    click.echo(f"wrote {index}: open it in a browser, rate, then Export CSV")


@cli.command("agreement")
@click.argument("ratings", nargs=-1, required=True, type=click.Path(path_type=Path))
def agreement_command(ratings: tuple[Path, ...]) -> None:
    """Inter-rater agreement of several raters' CSV files from the rating page."""
    from fusionaudio.agreement import agreement, read_rating_file

    try:
        rows = [r for path in ratings for r in read_rating_file(path)]
    except (OSError, ValueError) as exc:
        _fail(str(exc))
        return
    result = agreement(rows)

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    click.echo(
        f"{len(result.raters)} raters ({', '.join(result.raters)}), {result.clips} clips, "
        f"{result.clips_all_rated} rated by all"
    )
    click.echo(
        f"Krippendorff's alpha (ordinal): hallucination {show(result.alpha_hallucination)}, "
        f"detail {show(result.alpha_detail)}"
    )
    click.echo(
        f"hallucination label (score <= 2): Cohen's kappa {show(result.cohen_kappa)}, "
        f"Fleiss' kappa {show(result.fleiss_kappa)}"
    )


@cli.command("describe")
@click.option("--preset", type=click.Choice(PRESETS), default=None)
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
def describe_command(preset: str | None, config_path: Path | None) -> None:
    """Print the enabled stages: what each needs, produces and uses."""
    try:
        stages = build_stages(load_config(config_path, preset))
    except (ConfigError, GraphError) as exc:
        _fail(str(exc))
        return
    for stage in stages:
        click.echo(
            f"{stage.name}: needs {', '.join(stage.needs)}; produces {stage.produces}; "
            f"cpus {stage.resources.cpus:g}, gpus {stage.resources.gpus:g}; "
            f"batch {stage.batch_size} x {stage.workers} workers; config {stage.config_hash()}"
        )


cli.add_command(train_clap_command)
cli.add_command(eval_retrieval_command)
cli.add_command(zero_shot_command)


def main(argv: list[str] | None = None) -> None:
    limit_malloc_arenas()  # before any stage starts a thread
    cli.main(args=argv, prog_name="fusionaudio")
