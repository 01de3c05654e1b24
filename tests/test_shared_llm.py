"""Fusion and QA that name the same LLM share one client: one engine; and every stage
that talks to one server shares its ``max_concurrency``, not one limit per stage."""

from __future__ import annotations

import pickle
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fusionaudio.backends.llm import GenerationRequest
from fusionaudio.config import RunConfig, load_config
from fusionaudio.media.audio import AudioView
from fusionaudio.pipeline.graph import build_stages
from fusionaudio.pipeline.run import run
from fusionaudio.schema import Clip
from fusionaudio.stages.base import AUDIO_16K_MONO, StageInput
from fusionaudio.stages.fusion.fusion import FusionStage
from fusionaudio.stages.fusion.qa import QAStage
from tests.openai_server import ServerScript, openai_llm, serve
from tests.real_sounds import clips_of, decode_16k


class InFlight:
    """A reply that takes a while and records how many requests overlapped."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, body: dict[str, Any]) -> str:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.3)
        with self.lock:
            self.now -= 1
        return "{}"


def _config(tmp_path: Path, url: str, **server: Any) -> RunConfig:
    data = load_config().model_dump(mode="json")
    data["models_dir"] = str(tmp_path / "models")
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging"}
    data["quality"]["enabled"] = False
    data["fusion"].update(
        enabled=True, max_attempts=1, workers=4,
        llm=openai_llm(url, timeout_s=10, **server),
    )  # fmt: skip
    data["qa"].update(enabled=True, llm_pairs=1, max_attempts=1, workers=4)
    return RunConfig.model_validate(data)


def test_fusion_and_qa_share_one_client_and_one_concurrency_limit(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for label in ("dog_bark", "rain", "siren", "cat_meow", "applause", "horse"):
        for index, clip in enumerate(clips_of(label)[:2]):
            shutil.copy(clip.path, inputs / f"{label}{index}{clip.path.suffix}")
    replies = InFlight()
    script = ServerScript(reply=replies)
    with serve(script) as url:
        config = _config(tmp_path, url, max_concurrency=2)
        stages = build_stages(config)
        fusion = next(s for s in stages if isinstance(s, FusionStage))
        qa = next(s for s in stages if isinstance(s, QAStage))
        assert fusion.shared is not None and fusion.shared is qa.shared
        copy = pickle.loads(pickle.dumps(fusion))  # another process sets up its own
        assert copy.shared is not None and copy.shared is not fusion.shared
        fusion.setup()
        qa.setup()
        assert fusion._client is qa._client

        summary = run(inputs, tmp_path / "run", config)
    assert summary.stages["fusion"].computed > 0 and summary.stages["qa"].computed > 0
    # eight stage workers, one server limit of two requests at a time
    assert replies.most == 2, replies.most
    assert len(script.requests) >= summary.stages["fusion"].computed + 2


def test_different_llms_or_llama_cpp_keep_their_own_clients(tmp_path: Path) -> None:
    with serve(ServerScript(reply=lambda body: "{}")) as url:
        data = _config(tmp_path, url).model_dump(mode="json")
    data["qa"]["llm"] = {**data["fusion"]["llm"], "server": {**data["fusion"]["llm"]["server"],
                                                              "model": "other"}}  # fmt: skip
    stages = build_stages(RunConfig.model_validate(data))
    assert all(getattr(s, "shared", None) is None for s in stages)
    data["qa"]["llm"] = None
    data["fusion"]["llm"] = {"backend": "llama_cpp", "model": "qwen2.5-coder-1.5b"}
    stages = build_stages(RunConfig.model_validate(data))
    assert all(getattr(s, "shared", None) is None for s in stages)


def test_a_batch_goes_to_the_server_at_once_within_its_limit(tmp_path: Path) -> None:
    """One fusion worker, batches of 4: the server sees the batch's requests together,
    never more than its max_concurrency of 3."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for label in ("dog_bark", "rain", "siren", "cat_meow"):
        for index, clip in enumerate(clips_of(label)[:2]):
            shutil.copy(clip.path, inputs / f"{label}{index}{clip.path.suffix}")
    replies = InFlight()
    with serve(ServerScript(reply=replies)) as url:
        data = _config(tmp_path, url, max_concurrency=3).model_dump(mode="json")
        data["fusion"].update(workers=1, batch_size=4)
        data["qa"]["enabled"] = False
        summary = run(inputs, tmp_path / "run", RunConfig.model_validate(data))
    assert summary.stages["fusion"].computed >= 4
    assert replies.most == 3, replies.most


def test_every_stage_that_talks_to_a_server_shares_its_one_limit(tmp_path: Path) -> None:
    """Audio description (batches of 4, its section allowing 3 at a time) and fusion
    (batches of 4, allowing 2) on one server, side by side: the server never sees more
    than the smaller limit, and both stages' requests arrive."""
    replies = InFlight()
    script = ServerScript(reply=replies)
    with serve(script) as url:
        data = _config(tmp_path, url, max_concurrency=2).model_dump(mode="json")
        data["experts"]["audio_description"].update(
            enabled=True,
            backend="openai_audio",
            batch_size=4,
            server={"base_url": url, "model": "m", "max_retries": 0, "max_concurrency": 3},
        )
        stages = build_stages(RunConfig.model_validate(data))
        describe = next(s for s in stages if s.name == "audio_description")
        fusion = next(s for s in stages if isinstance(s, FusionStage))
        assert describe.batch_size == 4
        describe.setup()
        fusion.setup()
        items = [
            StageInput(
                Clip(label, label),
                {AUDIO_16K_MONO: AudioView(decode_16k(clips_of(label)[0].path)[None], 16_000)},
                {},
            )
            for label in ("dog_bark", "rain", "siren", "cat_meow")
        ]
        ask = GenerationRequest([{"role": "user", "content": "Say {}."}], 8, 0.0, None, 0)
        assert fusion._client is not None
        with ThreadPoolExecutor(2) as pool:
            described = pool.submit(describe, items)
            answered = pool.submit(fusion._client.generate_batch, [ask] * 4)
            cues, replies_ = described.result(), answered.result()
    assert [c.output["text"] for c in cues] == ["{}"] * 4 and len(replies_) == 4
    assert len(script.requests) == 8
    assert replies.most == 2, replies.most
