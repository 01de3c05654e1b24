"""A model's identity by content, for cache keys and provenance.

A path or a hub id names a model, but the same name can hold other weights tomorrow (a
fine-tuned checkpoint saved over the old one, a re-downloaded snapshot). Cached cues
keyed by the name would then be served for a model that no longer exists. The identity
is a sha256 over the bytes of the weight file, or, for a folder (a transformers
checkpoint, a hub snapshot), over the relative names and hashes of its weight and
configuration files. Hashing gigabytes takes seconds per gigabyte, so each file's hash
is memoised on disk by its path, size and modification time: a file is read once until
it changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from fusionaudio.backends.model_files import default_cache_root, sha256_file

# What decides a model's output: weights, configs, tokenizers, vocabularies. Model cards,
# licences and images do not.
CONTENT_SUFFIXES = frozenset(
    {
        ".safetensors", ".bin", ".pt", ".pth", ".th", ".ckpt", ".gguf", ".onnx", ".data",
        ".npz", ".h5", ".msgpack", ".json", ".yaml", ".yml", ".txt", ".model", ".tiktoken",
        ".vocab", ".spm",
    }
)  # fmt: skip
MEMO_FILE = "content-hashes.json"


class HashMemo:
    """sha256 per (path, size, mtime) in one small JSON file; a stale entry is re-hashed.

    Concurrent workers may each rewrite the file; the last complete write wins and the
    worst case is hashing a file twice.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.path = (root or default_cache_root()) / MEMO_FILE
        self._entries: dict[str, list[object]] | None = None

    def _load(self) -> dict[str, list[object]]:
        if self._entries is None:
            try:
                self._entries = dict(json.loads(self.path.read_text("utf-8")))
            except (OSError, ValueError):
                self._entries = {}
        return self._entries

    def sha256(self, file: Path) -> str:
        resolved = file.resolve()
        stat = resolved.stat()
        key = str(resolved)
        stamp: list[object] = [stat.st_size, stat.st_mtime_ns]
        entries = self._load()
        known = entries.get(key)
        if known is not None and known[:2] == stamp:
            return str(known[2])
        digest = sha256_file(resolved)
        entries[key] = [*stamp, digest]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{MEMO_FILE}.{os.getpid()}")
            tmp.write_text(json.dumps(entries, sort_keys=True), "utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only cache only costs re-hashing next time
        return digest


def _folder_files(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if not name.startswith(".") and path.suffix.lower() in CONTENT_SUFFIXES:
                files.append(path)
    return files


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_snapshot(model: str) -> Path | None:
    """The local snapshot folder of a hub id, when the HF cache holds one (never fetches:
    ``local_files_only``)."""
    if not HUB_ID.match(model):
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=model, local_files_only=True))
    except Exception:  # not installed, not cached, or not a valid id: no content to hash
        return None


def content_identity(model: str | Path | None, memo: HashMemo | None = None) -> str:
    """``sha256:<hex16>`` of a model file or folder (a hub id: its cached snapshot), or
    ``unresolved:<name>`` when nothing local holds it (the stage's setup will say so)."""
    if model is None:
        return "none"
    path = Path(model).expanduser()
    if not path.exists():
        snapshot = hub_snapshot(str(model))
        if snapshot is None:
            return f"unresolved:{model}"
        path = snapshot
    memo = memo or HashMemo()
    if path.is_file():
        return "sha256:" + memo.sha256(path)[:16]
    digest = hashlib.sha256()
    for file in _folder_files(path):
        digest.update(f"{file.relative_to(path).as_posix()}\0{memo.sha256(file)}\n".encode())
    return "sha256:" + digest.hexdigest()[:16]
