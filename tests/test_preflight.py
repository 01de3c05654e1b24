"""A configuration that cannot run on this machine is refused before any clip runs:
exit 2, one line per problem naming the key and the fix, no traceback, no run folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from fusionaudio.cli import cli
from tests.media_factory import EXAMPLES

BROKEN = [
    (
        "experts: {separation: {backend: htdemucs}}",
        ["experts.separation.model_path: missing; give a .th file"],
    ),
    (
        "experts: {separation: {backend: htdemucs, model_path: /no/such/model.th}}",
        ["experts.separation.model_path: /no/such/model.th does not exist"],
    ),
    (
        "experts: {asr: {backend: transformers_whisper, model: ./no-such-folder}}",
        ["experts.asr.model: ./no-such-folder does not exist"],
    ),
    (
        "experts: {asr: {backend: transformers_whisper, model: no-such-org/whisper-x}}",
        [
            "experts.asr.model: 'no-such-org/whisper-x' is not in the local Hugging Face cache "
            "and nothing is downloaded at run time: run `huggingface-cli download "
            "no-such-org/whisper-x` first"
        ],
    ),
    (
        "experts: {audio_description: {backend: qwen2_audio}}",
        ["experts.audio_description.model: missing"],
    ),
    (
        "experts: {music: {backend: openai_audio}}",
        ["experts.music: the openai_audio backend needs server: {base_url"],
    ),
    ("quality: {scorer: clap_checkpoint}", ["quality.model: missing; give a train-clap"]),
    ("quality: {scorer: clap_transformers, model: /no/clap}", ["quality.model: /no/clap does"]),
    (
        "fusion: {llm: {backend: llama_cpp, model: /no/model.gguf}}",
        ["fusion.llm.model: /no/model.gguf does not exist; give a packaged model name"],
    ),
    ("fusion: {llm: {backend: openai}}", ["fusion.llm: the openai backend needs server"]),
    (
        "qa: {llm: {backend: openai}}",
        ["qa.llm: the openai backend needs server"],
    ),
    (
        "fusion: {llm: {backend: vllm, model: /no/qwen}}",
        [
            "fusion.llm.backend: the vllm backend needs the vllm package",
            "fusion.llm.model: /no/qwen does not exist",
        ],
    ),
    (
        "experts: {vision: {backend: qwen2_5_vl, model: /no/vl, device: cuda:0}}",
        [
            "experts.vision.device: device cuda:0 asked for, but no CUDA device is visible",
            "experts.vision.model: /no/vl does not exist",
        ],
    ),
    (
        "experts: {asr: {backend: nope}}",
        [
            "experts.asr.backend: Value error, unknown asr backend 'nope'; "
            "known: faster_whisper, transformers_whisper"
        ],
    ),
    ("fusion: {prompt_file: /no/prompt.txt}", ["fusion.prompt_file: Path does not point"]),
]


@pytest.mark.parametrize(("yaml_text", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_config_exits_2_with_one_line_per_problem(
    yaml_text: str, expected: list[str], tmp_path: Path
) -> None:
    if importlib.util.find_spec("vllm") is not None:  # where vllm is installed, only the path
        expected = [line for line in expected if "needs the vllm package" not in line]
    config = tmp_path / "broken.yaml"
    config.write_text(yaml_text + "\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["run", str(EXAMPLES / "speech_fox.wav"), "--out", str(out), "--config", str(config),
         "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == len(expected), lines
    for line, fragment in zip(lines, expected, strict=True):
        assert line.startswith("fusionaudio: error: ") and fragment in line, (line, fragment)
    assert "Traceback" not in result.output
    assert not (out / "shards").exists()  # refused before the run folder was used
