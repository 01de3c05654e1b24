"""Clips per second through four engines, on real recordings, against a naive loop.

N varied real clips (round robin over the classes of ../shared/data/sounds; past its 118
recordings, copies at a slightly lower gain, so no cache applies between clips) through
the offline preset with the LLM stages off (the expert-bound part): separation, ASR,
VAD, tagging, voice, audio description, music.

  naive       the loop peer scripts write: models loaded once, then one clip at a time,
              stage after stage, no overlap, no cache, no run folder
  sequential  the reference engine (batches, cache, shards)
  local       the streaming engine (threads, bounded queues): the default
  ray         the Ray Data engine on a local Ray instance (2 CPUs)

Each engine runs in its own process, in a fresh run folder. Printed: clips/s and the
ratio to the naive loop, per-stage busy seconds, the bottleneck stage, pipeline
efficiency (the bottleneck's busy time per worker / wall time: a stage with two workers
is busy twice as many seconds as it takes), and the peak RSS of the local engine's
process at N and 10N clips.

Usage: python benchmarks/throughput.py [--clips 8] [--rss-scale 10] [--rss-every 5]
       [--engines naive,sequential,local,ray] [--in-flight N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SOUNDS = REPO.parent / "shared" / "data" / "sounds"
EXPERT_STAGES = ("vad", "tagging", "separation", "asr", "voice", "audio_description", "music")


def _clips(count: int) -> list[Path]:
    """Round robin over classes: clip i of every class before clip i+1 of any."""
    by_class: dict[str, list[Path]] = defaultdict(list)
    for line in (SOUNDS / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_class[row["class"]].append(SOUNDS / row["path"])
    order: list[Path] = []
    depth = 0
    while len(order) < count and any(len(v) > depth for v in by_class.values()):
        order += [paths[depth] for _, paths in sorted(by_class.items()) if len(paths) > depth]
        depth += 1
    return order[:count]


def _varied_clips(count: int, scratch: Path) -> list[Path]:
    """``count`` clips, every one of different content: past the labelled set, each round
    again is a copy at a slightly lower gain, so no stage's cache serves it."""
    import soundfile

    from fusionaudio.media.decode import Window, decode_audio

    unique = _clips(count)
    paths = list(unique)
    for index in range(len(unique), count):
        source = unique[index % len(unique)]
        gain = 1.0 - 0.02 * (index // len(unique))
        audio = decode_audio(source, Window(0, 30), 30).audio
        copy = scratch / "copies" / f"{index:05d}-{source.stem}.wav"
        copy.parent.mkdir(exist_ok=True)
        soundfile.write(copy, (audio.samples * gain).T, audio.sample_rate, subtype="FLOAT")
        paths.append(copy)
    return paths


def _config() -> Any:
    from fusionaudio.config import RunConfig, load_config

    data = load_config(preset="offline").model_dump(mode="json")
    for name, section in data["experts"].items():
        section["enabled"] = name in (*EXPERT_STAGES, "given_tags")
    for stage in ("fusion", "qa", "quality"):
        data[stage]["enabled"] = False
    return RunConfig.model_validate(data)


def _naive(manifest: Path, scratch: Path) -> dict[str, float]:
    from fusionaudio.pipeline.graph import build_stages
    from fusionaudio.pipeline.inputs import discover
    from fusionaudio.pipeline.steps import LoadStep, StageStep
    from fusionaudio.pipeline.task import ClipTask
    from fusionaudio.store.stage_cache import StageCache

    config = _config()
    started = time.perf_counter()  # loading the models counts, as in the engines' wall time
    stages = build_stages(config)
    for stage in stages:
        stage.setup()
    cache = StageCache(scratch / "unused-cache")
    load = LoadStep(stages, config.media, cache, workers=1)
    steps = [StageStep(stage, cache, frozenset()) for stage in stages]
    busy: dict[str, float] = defaultdict(float)
    for clip in discover(manifest, config.media, config.inputs):
        task = ClipTask(clip=clip)
        load.process([task])
        for step in steps:
            t0 = time.perf_counter()
            step.process([task])
            busy[step.name] += time.perf_counter() - t0
    busy["_wall"] = time.perf_counter() - started
    return dict(busy)


def _engine(kind: str, manifest: Path, scratch: Path, in_flight: int | None) -> dict[str, float]:
    from fusionaudio.engine.local import LocalStreamingEngine
    from fusionaudio.engine.ray_data import RayDataEngine
    from fusionaudio.engine.sequential import SequentialEngine
    from fusionaudio.pipeline.run import run

    config = _config()
    engine: Any
    if kind == "sequential":
        engine = SequentialEngine()
    elif kind == "local":
        engine = LocalStreamingEngine(in_flight=in_flight)
    else:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        groups = config.engine.actor_groups  # the preset's: cheap steps share an actor
        engine = RayDataEngine(timings=lambda task: task.timings, groups=groups)
    summary = run(manifest, scratch / "run", config, engine=engine)
    busy = {name: stage.busy_s for name, stage in summary.stages.items()}
    busy["_wall"] = summary.wall_s
    return busy


def _child(kind: str, count: int, out: Path, in_flight: int | None) -> None:
    from fusionaudio.malloc_arenas import limit_malloc_arenas

    limit_malloc_arenas()  # as the fusionaudio command does
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        manifest = scratch / "clips.jsonl"
        manifest.write_text(
            "".join(
                json.dumps({"path": str(p), "clip_id": f"{i:05d}-{p.name}"}) + "\n"
                for i, p in enumerate(_varied_clips(count, scratch))
            ),
            encoding="utf-8",
        )
        busy = (
            _naive(manifest, scratch)
            if kind == "naive"
            else _engine(kind, manifest, scratch, in_flight)
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps({"busy": busy, "clips": count, "peak_rss_mb": peak_mb}))


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _measure(
    kind: str, count: int, in_flight: int | None, rss_every_s: float = 0.0
) -> dict[str, Any]:
    """One engine in a child process; with ``rss_every_s``, the child's RSS sampled at
    that interval (to tell memory that keeps growing from a plateau)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, __file__, "--child", kind, "--clips", str(count), "--out", str(out)]
    if in_flight is not None:
        command += ["--in-flight", str(in_flight)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trace: list[float] = []
    while child.poll() is None:
        if rss_every_s > 0:
            rss = _rss_mb(child.pid)
            if rss is not None:
                trace.append(rss)
        time.sleep(rss_every_s if rss_every_s > 0 else 1.0)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, command)
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    result["rss_trace_mb"] = trace
    return result


def _deciles(trace: list[float]) -> str:
    """The largest RSS sample in each tenth of the run."""
    parts = [trace[i * len(trace) // 10 : (i + 1) * len(trace) // 10] for i in range(10)]
    return " ".join(f"{max(part):.0f}" for part in parts if part) or "no samples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--rss-scale", type=int, default=10)
    parser.add_argument("--engines", default="naive,sequential,local,ray")
    parser.add_argument(
        "--rss-every", type=float, default=0.0, help="sample the 10N run's RSS every S seconds"
    )
    parser.add_argument(
        "--in-flight", type=int, default=None, help="the local engine's window (default: its own)"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.clips, args.out, args.in_flight)
        return

    print(f"{args.clips} real clips, offline preset, LLM stages off; {platform.machine()}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    results = {kind: _measure(kind, args.clips, args.in_flight) for kind in args.engines.split(",")}
    experts = _config().experts
    workers = {name: getattr(experts, name).workers for name in EXPERT_STAGES}
    naive_rate = None
    print(
        "| engine | wall s | clips/s | × naive | × local | bottleneck (busy s per worker) "
        "| efficiency | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    local_rate = args.clips / results["local"]["busy"]["_wall"] if "local" in results else None
    for kind, result in results.items():
        busy = dict(result["busy"])
        wall = busy.pop("_wall")
        rate = args.clips / wall
        naive_rate = naive_rate or (rate if kind == "naive" else None)
        if kind in ("local", "ray"):  # the engines that run a stage's workers side by side
            busy = {name: s / workers.get(name, 1) for name, s in busy.items()}
        stage, seconds = max(busy.items(), key=lambda item: item[1])
        ratio = f"{rate / naive_rate:.2f}" if naive_rate else "—"
        to_local = f"{rate / local_rate:.2f}" if local_rate else "—"
        print(f"| {kind} | {wall:.1f} | {rate:.3f} | {ratio} | {to_local} | {stage} "
              f"({seconds:.1f}) | {seconds / wall:.2f} | {result['peak_rss_mb']:.0f} |")  # fmt: skip
    print()
    print("per-stage busy seconds:")
    for kind, result in results.items():
        busy = {k: round(v, 1) for k, v in result["busy"].items() if k != "_wall"}
        print(f"  {kind}: {busy}")
    if args.rss_scale > 1:
        large = _measure("local", args.clips * args.rss_scale, args.in_flight, args.rss_every)
        small = results.get("local") or _measure("local", args.clips, args.in_flight)
        growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
        print(f"\nlocal engine peak RSS: {small['peak_rss_mb']:.0f} MB at {args.clips} clips, "
              f"{large['peak_rss_mb']:.0f} MB at {args.clips * args.rss_scale} clips "
              f"({growth:+.0%}); {args.clips * args.rss_scale / large['busy']['_wall']:.3f} "
              f"clips/s there")  # fmt: skip
        if args.rss_every > 0:
            print(f"RSS of the {args.clips * args.rss_scale}-clip run, largest sample in each "
                  f"tenth of its wall time (MB): {_deciles(large['rss_trace_mb'])}")  # fmt: skip


if __name__ == "__main__":
    main()
