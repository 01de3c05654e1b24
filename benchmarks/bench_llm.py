"""Fusion with the offline LLM on real recordings: seconds per clip, in-process at stage
batch sizes 1, 2 and 4 (parallel sequences of one llama.cpp context), and optionally
through a local llama.cpp server at concurrency 1 and 4.

``--server`` uses llama-cpp-python's server, which answers one request at a time.
``--server-binary PATH`` uses llama.cpp's own ``llama-server`` started with 4 slots: it
decodes the requests in flight as one batch (continuous batching), which is what the
``openai`` backend's concurrency is for. There fusion and then QA run at 1 and at 4
requests in flight, and the ratio is clips/s through both stages.

The experts run first on N real clips, one per class (not timed); then each mode fuses
the same clips. The baseline, in the same run, is one answer at a time through
llama-cpp-python's ``create_chat_completion`` (what peer scripts do, and what this
backend did before the parallel decoder).
Usage: python benchmarks/bench_llm.py [--clips 12] [--model qwen2.5-coder-1.5b] [--threads 2]
       [--server] [--server-binary build/bin/llama-server [--only-server]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from fusionaudio.backends.gguf_models import resolve_gguf
from fusionaudio.backends.llm import GenerationRequest, LLMReply
from fusionaudio.backends.openai_http import ServerSettings
from fusionaudio.config import RunConfig, load_config
from fusionaudio.pipeline.run import run
from fusionaudio.schema import Clip, ClipResult, Cue
from fusionaudio.stages.base import StageInput
from fusionaudio.stages.fusion.fusion import FusionStage
from fusionaudio.stages.fusion.llm_choice import LLMSettings
from fusionaudio.stages.fusion.qa import QAStage

SOUNDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sounds"
EXPERTS = (
    "given_tags",
    "vad",
    "tagging",
    "separation",
    "asr",
    "audio_description",
    "music",
    "vision",
)


def expert_inputs(config: RunConfig, work: Path, clips: int) -> list[StageInput]:
    """The experts' cues for the first ``clips`` classes of the labelled recordings."""
    seen: set[str] = set()
    lines = ["path,clip_id"]
    for line in (SOUNDS / "labels.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["class"] not in seen and len(seen) < clips:
            seen.add(row["class"])
            lines.append(f"{SOUNDS / row['path']},{row['class']}")
    manifest = work / "clips.csv"
    manifest.write_text("\n".join(lines) + "\n")
    data = config.model_dump(mode="json")
    data["fusion"]["enabled"] = False
    run(manifest, work / "experts", RunConfig.model_validate(data))
    items = []
    for line in (work / "experts" / "results.jsonl").read_text().splitlines():
        record = ClipResult.from_dict(json.loads(line))
        items.append(StageInput(Clip(record.clip_id, record.source), {}, record.cues, record.media))
    return items


class CreateChatCompletion:
    """The baseline: llama-cpp-python's chat completion, one answer at a time."""

    name = "llama_cpp"
    model_id = "baseline"
    revision = "create_chat_completion"

    def __init__(self, gguf: Path, threads: int) -> None:
        from llama_cpp import Llama

        self._llm = Llama(
            model_path=str(gguf), n_ctx=4096, n_threads=threads, verbose=False, seed=0
        )

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[LLMReply]:
        replies = []
        for r in requests:
            started = time.perf_counter()
            out: Any = self._llm.create_chat_completion(
                messages=r.messages,  # type: ignore[arg-type]
                max_tokens=r.max_tokens,
                temperature=r.temperature,
                seed=r.seed,
                response_format={"type": "json_object", "schema": r.json_schema},  # type: ignore[typeddict-item]
            )
            usage = out["usage"]
            replies.append(
                LLMReply(
                    out["choices"][0]["message"]["content"] or "",
                    usage["prompt_tokens"],
                    usage["completion_tokens"],
                    time.perf_counter() - started,
                )
            )
        return replies


def fuse_all(
    stage: FusionStage | QAStage, items: list[StageInput], warm: int = 1
) -> tuple[float, list[Cue]]:
    """Wall time to run every clip in stage batches, after a warm-up on the first clip
    (loads the model, caches the instruction prefix); ``warm`` copies of it at once warm
    that many server slots, each of which caches its own prefix."""
    stage([items[0]] * warm)
    started = time.perf_counter()
    cues: list[Cue] = []
    for i in range(0, len(items), stage.batch_size):
        cues += stage(items[i : i + stage.batch_size])
    return time.perf_counter() - started, cues


def report(name: str, wall: float, cues: list[Cue], baseline: float | None) -> None:
    written = [c.output for c in cues if not c.output.get("uncertain")]
    by_llm = sum(o.get("realized_by") == "llm" for o in written)
    completion = sum(o.get("tokens", {}).get("completion", 0) for o in written)
    ratio = "" if baseline is None else f"  {baseline / wall:4.2f}x baseline"
    print(
        f"{name:40s} {wall / len(cues):5.2f} s/clip{ratio}  "
        f"({by_llm}/{len(written)} by the LLM, {completion} completion tokens)",
        flush=True,
    )


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--server", action="store_true", help="also a local llama.cpp server")
    parser.add_argument(
        "--server-binary",
        type=Path,
        help="llama.cpp's llama-server: fusion and QA, 1 vs 4 in flight",
    )
    parser.add_argument("--only-server", action="store_true", help="skip the in-process modes")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fa-llm-"))
    config = load_config().model_copy(update={"models_dir": work / "models"})
    items = expert_inputs(config, work, args.clips)
    print(
        f"machine: {platform.machine()}, {cpu_name()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}; model {args.model}, {args.threads} threads; "
        f"{len(items)} real clips"
    )
    llm = LLMSettings(
        backend="llama_cpp", model=args.model, models_dir=config.models_dir, threads=args.threads
    )
    gguf = resolve_gguf(args.model, config.models_dir)
    if not args.only_server:
        in_process_modes(args, llm, gguf, items)
    if args.server:
        server_modes(args, gguf, items)
    if args.server_binary is not None:
        batching_server_modes(args, gguf, items)


def in_process_modes(
    args: argparse.Namespace, llm: LLMSettings, gguf: Path, items: list[StageInput]
) -> None:
    baseline_stage = FusionStage(llm, wants=EXPERTS)
    baseline_stage._client = CreateChatCompletion(gguf, args.threads)  # type: ignore[assignment]
    baseline, cues = fuse_all(baseline_stage, items)
    report("baseline: create_chat_completion, 1 at a time", baseline, cues, None)
    del baseline_stage
    for batch in (1, 2, 4):
        stage = FusionStage(llm, wants=EXPERTS, batch_size=batch)
        stage.setup()
        wall, cues = fuse_all(stage, items)
        report(f"parallel decoder, stage batch {batch}", wall, cues, baseline)
        del stage


def start_server(command: list[str], port: int) -> subprocess.Popen[bytes]:
    """The server process, once it answers ``/v1/models`` (it loads the model first)."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"the server did not answer: {command[0]}")


def server_modes(args: argparse.Namespace, gguf: Path, items: list[StageInput]) -> None:
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--n_threads", str(args.threads),
         "--n_ctx", "4096", "--port", str(port), "--host", "127.0.0.1"],
        port,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/v1"
        settings = ServerSettings(base_url=base, model=args.model, timeout_s=600, max_concurrency=4)
        walls = {}
        for batch in (1, 4):
            stage = FusionStage(
                LLMSettings(backend="openai", server=settings, json_mode="json_object"),
                wants=EXPERTS,
                batch_size=batch,
            )
            stage.setup()
            walls[batch], cues = fuse_all(stage, items)
            report(f"llama.cpp server, {batch} in flight", walls[batch], cues, None)
        print(f"server, 4 in flight vs 1: {walls[1] / walls[4]:.2f}x")
    finally:
        server.terminate()
        server.wait(timeout=30)


def batching_server_modes(args: argparse.Namespace, gguf: Path, items: list[StageInput]) -> None:
    """Fusion, then QA on the fused clips, through llama.cpp's server with 4 slots (each
    with the 4,096-token context the in-process modes use), at 1 and at 4 requests in
    flight. The server is started afresh for each setting so neither inherits the other's
    prompt cache."""
    slots = 4
    rates = {}
    for in_flight in (1, slots):
        port = free_port()
        server = start_server(
            [str(args.server_binary), "--model", str(gguf), "--threads", str(args.threads),
             "--parallel", str(slots), "--ctx-size", str(4096 * slots), "--cont-batching",
             "--port", str(port), "--host", "127.0.0.1"],
            port,
        )  # fmt: skip
        try:
            settings = ServerSettings(
                base_url=f"http://127.0.0.1:{port}/v1",
                model=args.model,
                timeout_s=900,
                max_concurrency=in_flight,
            )
            llm = LLMSettings(backend="openai", server=settings, json_mode="json_object")
            fusion = FusionStage(llm, wants=EXPERTS, batch_size=in_flight)
            fusion.setup()
            fusion_wall, fused = fuse_all(fusion, items, warm=in_flight)
            report(f"llama-server, fusion, {in_flight} in flight", fusion_wall, fused, None)
            qa = QAStage(llm, wants=EXPERTS, batch_size=in_flight)
            qa.setup()
            with_fusion = [
                StageInput(i.clip, i.views, {**i.cues, "fusion": cue}, i.media)
                for i, cue in zip(items, fused, strict=True)
            ]
            qa_wall, pairs = fuse_all(qa, with_fusion, warm=in_flight)
            by_llm = sum(
                p.get("realized_by") == "llm" for c in pairs for p in c.output.get("pairs", [])
            )
            total = sum(len(c.output.get("pairs", [])) for c in pairs)
            print(
                f"{'llama-server, QA, ' + str(in_flight) + ' in flight':40s} "
                f"{qa_wall / len(pairs):5.2f} s/clip  ({by_llm}/{total} pairs by the LLM)",
                flush=True,
            )
            rates[in_flight] = len(items) / (fusion_wall + qa_wall)
            print(f"fusion + QA, {in_flight} in flight: {rates[in_flight]:.3f} clips/s", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"llama-server, fusion + QA, {slots} in flight vs 1: {rates[slots] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
