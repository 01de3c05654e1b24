from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fusionaudio.config import RunConfig, load_config
from fusionaudio.stages.experts.tagging import TaggingConfig, TaggingStage
from fusionaudio.stages.settings import BuildContext
from tests.media_factory import EXAMPLES, colour_frames, example_audio, write_audio, write_video


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


FAST_EXPERTS = {"vad", "tagging", "given_tags"}


@pytest.fixture()
def full_config(models_dir: Path) -> RunConfig:
    """The offline preset, every expert on; no LLM stage (tests of stage 2 turn it on)."""
    data = load_config().model_dump()
    data["models_dir"] = models_dir
    data["fusion"]["enabled"] = False
    data["qa"]["enabled"] = False
    return RunConfig.model_validate(data)


@pytest.fixture()
def config(full_config: RunConfig) -> RunConfig:
    """The offline preset with only the fast experts: for tests of the run machinery."""
    data = full_config.model_dump()
    for name, section in data["experts"].items():
        section["enabled"] = name in FAST_EXPERTS
    return RunConfig.model_validate(data)


@pytest.fixture(scope="session")
def tagger(models_dir: Path) -> TaggingStage:
    """YAMNet, loaded once for every test that tags real audio."""
    stage = TaggingStage(TaggingConfig(), BuildContext(models_dir))
    stage.setup()
    return stage


@pytest.fixture(scope="session")
def speech_16k() -> np.ndarray:
    return example_audio("speech_fox.wav")


@pytest.fixture(scope="session")
def music_16k() -> np.ndarray:
    return example_audio("music_pingus.ogg")


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory, speech_16k: np.ndarray) -> Path:
    """One folder holding every kind of bad input the issue names, plus one good clip."""
    folder = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "not_media.mp3").write_text("this is a text file, not an mp3\n" * 20)
    full = (EXAMPLES / "engine_start.mp3").read_bytes()
    (folder / "truncated.mp3").write_bytes(full[: len(full) // 3])
    wav = (EXAMPLES / "speech_fox.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(wav[: len(wav) // 2])
    (folder / "garbage.ogg").write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    write_video(folder / "video_no_audio.mp4", colour_frames(10), fps=5)
    write_audio(folder / "short_0.2s.wav", speech_16k[None, 8000:11200], 16_000)
    write_audio(folder / "digital_silence.wav", np.zeros((1, 48_000), np.float32), 16_000)
    t = np.arange(96_000 * 3) / 96_000
    six = np.stack([0.1 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(6)]).astype(
        np.float32
    )
    write_audio(folder / "six_channels_96k.flac", six, 96_000)
    write_audio(folder / "café – naïve voix ünïcode.wav", speech_16k[None, :], 16_000)
    ten_minutes = np.tile(speech_16k, int(np.ceil(600 * 16_000 / len(speech_16k))))[: 600 * 16_000]
    write_audio(folder / "ten minutes.flac", ten_minutes[None, :], 16_000)
    shutil.copy(EXAMPLES / "music_pingus.ogg", folder / "good_music.ogg")
    return folder


@pytest.fixture(scope="session")
def captioned_run(tmp_path_factory: pytest.TempPathFactory, examples_dir: Path) -> Path:
    """A real run for the tools that read runs (report, rating page): real clips through the
    fast experts; the LLM answers nonsense, so code writes every caption from its plan (the
    path a weak model takes), and one file is not audio at all."""
    from fusionaudio.pipeline.run import run
    from tests.openai_server import ServerScript, openai_llm, serve
    from tests.real_sounds import clips_of

    root = tmp_path_factory.mktemp("captioned")
    data = load_config().model_dump(mode="json")
    data["models_dir"] = str(root / "models")
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging", "given_tags"}
    src = root / "in"
    src.mkdir()
    for name in ("speech_fox.wav", "engine_start.mp3", "music_pingus.ogg"):
        shutil.copy(examples_dir / name, src)
    for label in ("dog_bark", "rain", "siren", "applause", "owl_hoot"):
        clip = clips_of(label)[0]
        shutil.copy(clip.path, src / f"{label}{clip.path.suffix}")
    (src / "broken.wav").write_bytes(b"RIFF not audio")
    with serve(ServerScript(reply=lambda body: "{}")) as url:
        data["fusion"].update(
            enabled=True,
            max_attempts=1,
            llm=openai_llm(url, timeout_s=2),
        )
        data["qa"]["enabled"] = True
        run(src, root / "run", RunConfig.model_validate(data))
    return root / "run"


def pytest_report_header() -> str:
    """Where the real recordings were looked for, first thing in the output: when they
    are missing, the many tests that need them fail, and this line says why."""
    from tests.real_sounds import SOUNDS, missing_sounds

    why = missing_sounds()
    return f"real recordings: {SOUNDS}" if why is None else f"real recordings: NOT FOUND: {why}"
