"""Fusion and QA with the offline LLM: seconds per clip and tokens per second, in-process
(llama-cpp-python) and through a local llama.cpp server at concurrency 1 and 4.

The experts run first (not timed); then each mode fuses the same clips. Baselines in the
same run: in-process fusion for the server, concurrency 1 for concurrency 4.
Usage: python benchmarks/bench_llm.py [--model qwen2.5-coder-1.5b] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from fusionaudio.backends.gguf_models import resolve_gguf
from fusionaudio.backends.openai_http import ServerSettings
from fusionaudio.config import RunConfig, load_config
from fusionaudio.pipeline.run import run
from fusionaudio.schema import Clip, ClipResult, Cue
from fusionaudio.stages.base import StageInput
from fusionaudio.stages.fusion.fusion import FusionStage
from fusionaudio.stages.fusion.generation import AnswerRejected
from fusionaudio.stages.fusion.llm_choice import LLMSettings
from fusionaudio.stages.fusion.qa import QAStage

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
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


def expert_inputs(config: RunConfig, work: Path) -> list[StageInput]:
    data = config.model_dump(mode="json")
    data["fusion"]["enabled"] = False
    run(EXAMPLES, work / "experts", RunConfig.model_validate(data))
    items = []
    for line in (work / "experts" / "results.jsonl").read_text().splitlines():
        record = ClipResult.from_dict(json.loads(line))
        items.append(StageInput(Clip(record.clip_id, record.source), {}, record.cues, record.media))
    return items


def timed(
    stage: FusionStage | QAStage, items: list[StageInput], concurrency: int
) -> tuple[float, list[tuple[StageInput, Cue]]]:
    """Wall time over all clips. A clip whose answers never pass validation is reported
    (the pipeline would record it as that clip's error); its time stays in the wall."""

    def one(item: StageInput) -> tuple[StageInput, Cue] | None:
        try:
            return item, stage([item])[0]
        except AnswerRejected as exc:
            print(f"  {item.clip.clip_id}: {exc}")
            return None

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = [pair for pair in pool.map(one, items) if pair is not None]
    return time.perf_counter() - started, done


def report(name: str, wall: float, done: list[tuple[StageInput, Cue]], clips: int) -> None:
    cues = [cue for _, cue in done]
    completion = sum(c.output.get("tokens", {}).get("completion", 0) for c in cues)
    prompt = sum(c.output.get("tokens", {}).get("prompt", 0) for c in cues)
    print(
        f"{name:34s} {wall / clips:6.1f} s/clip  {completion / wall:5.2f} completion tok/s  ({prompt} prompt + {completion} completion tokens)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fa-llm-"))
    config = load_config().model_copy(update={"models_dir": work / "models"})
    items = expert_inputs(config, work)
    items = [i for i in items if i.cues.get("tagging") is not None]
    print(
        f"machine: {platform.machine()}, python {platform.python_version()}; model {args.model}, {args.threads} threads; {len(items)} clips"
    )
    llm = LLMSettings(
        backend="llama_cpp", model=args.model, models_dir=config.models_dir, threads=args.threads
    )
    fusion = FusionStage(llm, wants=EXPERTS)
    fusion.setup()
    fusion([items[0]])  # warm-up: loads the model, caches the prompt prefix
    fusion._captions.clear()
    wall, captioned = timed(fusion, items, 1)
    report("fusion, in-process", wall, captioned, len(items))
    print(f"  {len(captioned)} of {len(items)} clips captioned")
    qa = QAStage(llm, wants=EXPERTS)
    qa.setup()
    qa_items = [StageInput(i.clip, {}, {**i.cues, "fusion": c}, i.media) for i, c in captioned][:2]
    wall, asked = timed(qa, qa_items, 1)
    report("qa (4 pairs), in-process", wall, asked, len(qa_items))
    del fusion, qa

    port = free_port()
    gguf = resolve_gguf(args.model, config.models_dir)
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--n_threads", str(args.threads),
         "--n_ctx", "4096", "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}/v1"
        for _ in range(120):
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        settings = ServerSettings(base_url=base, model=args.model, timeout_s=600, max_concurrency=4)
        results = {}
        for concurrency in (1, 4):
            stage = FusionStage(
                LLMSettings(backend="openai", server=settings, json_mode="json_object"),
                wants=EXPERTS,
            )
            stage.setup()
            stage([items[0]])
            stage._captions.clear()
            wall, done = timed(stage, items, concurrency)
            results[concurrency] = wall
            report(f"fusion, llama.cpp server, conc. {concurrency}", wall, done, len(items))
            print(f"  {len(done)} of {len(items)} clips captioned")
        print(
            f"concurrency 4 vs 1 against the local llama.cpp server: {results[1] / results[4]:.2f}x"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
