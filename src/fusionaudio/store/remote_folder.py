"""A run folder on an object store or any other pyarrow or fsspec filesystem (``s3://``,
``gs://``, ``abfs://``, ``hdfs://``, ``file://``, ``memory://``…).

What makes a run folder resumable needs a POSIX folder: SQLite files (the run index, the
stage cache) and renames that are atomic. So the run works in a local staging folder,
and the remote folder holds what must outlive the machine:

- every result shard, copied as soon as it is complete (a shard is the unit of resume);
- at the end of the run, the stage cache, ``results.jsonl``, ``results.parquet`` and
  ``run.json``.

A run that starts with a staging folder that lacks some of the remote shards (another
machine, or a lost staging folder) copies them down first, and the remote stage cache
comes down as a cache segment that the next compaction merges, so the run resumes where
the last one stopped. Shards the staging folder holds and the remote lacks (a run killed
between finishing a shard and copying it) are copied up.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from fusionaudio.store.results import is_shard_name, shard_files

OUTPUTS = ("results.jsonl", "results.parquet", "run.json")
CACHE = "cache/cues.sqlite"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Stores whose upload becomes visible only once complete: no temporary name needed, and
# their "move" would copy the whole object again.
_ATOMIC_PUT = {"s3", "gcs", "abfs"}
_CHUNK = 8 << 20


class RemoteFolderError(Exception):
    """The remote run folder cannot be opened, read or written."""


def is_uri(text: str) -> bool:
    return _URI.match(text) is not None


def staging_folder(uri: str, base: Path) -> Path:
    """One local folder per remote run folder, the same on every run from this machine."""
    digest = hashlib.blake2b(uri.rstrip("/").encode(), digest_size=8).hexdigest()
    return base / digest


@dataclass(frozen=True)
class RemoteRunFolder:
    uri: str
    filesystem: pafs.FileSystem
    root: str

    @classmethod
    def open(cls, uri: str) -> RemoteRunFolder:
        try:
            filesystem, root = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            filesystem, root = _fsspec_filesystem(uri, exc)
        except (OSError, pa.ArrowException) as exc:
            raise RemoteFolderError(f"cannot open the run folder {uri}: {exc}") from None
        return cls(uri, filesystem, root.rstrip("/"))

    def _path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def _files(self, relative: str) -> dict[str, int]:
        """Name → size of the files in one remote folder (none when it does not exist)."""
        selector = pafs.FileSelector(self._path(relative), allow_not_found=True)
        return {
            info.base_name: info.size or 0
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File
        }

    def _size(self, relative: str) -> int | None:
        info = self.filesystem.get_file_info(self._path(relative))
        return info.size if info.type == pafs.FileType.File else None

    def pull(self, local: Path) -> None:
        """Bring the staging folder up to date with the remote one before a run: copy
        down the shards it lacks (or holds at another size: the remote copy wins), the
        remote stage cache as a segment when it differs from the local one, and copy up
        the complete shards the remote lacks."""
        try:
            remote = {n: s for n, s in self._files("shards").items() if is_shard_name(n)}
            for name, size in sorted(remote.items()):
                target = local / "shards" / name
                if not target.is_file() or target.stat().st_size != size:
                    self._download(f"shards/{name}", target)
            cache_size = self._size(CACHE)
            main = local / CACHE
            if cache_size is not None and (not main.is_file() or main.stat().st_size != cache_size):
                self._download(CACHE, main.parent / f"cues-remote-{os.getpid()}.sqlite")
            self.push_missing_shards(local, set(remote))
        except (OSError, pa.ArrowException) as exc:
            raise RemoteFolderError(f"cannot read the run folder {self.uri}: {exc}") from None

    def push_missing_shards(self, local: Path, remote: set[str] | None = None) -> None:
        """Copy up the local shards the remote folder does not hold."""
        present = set(self._files("shards")) if remote is None else remote
        for _, path in shard_files(local / "shards"):
            if path.name not in present:
                self.push(path, f"shards/{path.name}")

    def push(self, source: Path, relative: str) -> None:
        """Copy one local file to ``relative``; readers see the old file or the whole new one."""
        final = self._path(relative)
        parent = final.rsplit("/", 1)[0]
        self.filesystem.create_dir(parent, recursive=True)
        atomic_put = self.filesystem.type_name in _ATOMIC_PUT
        target = final if atomic_put else f"{parent}/.{source.name}.{os.getpid()}.tmp"
        with source.open("rb") as src, self.filesystem.open_output_stream(target) as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        if not atomic_put:
            if self.filesystem.get_file_info(final).type == pafs.FileType.File:
                self.filesystem.delete_file(final)  # some filesystems' move will not replace
            self.filesystem.move(target, final)

    def try_push_shard(self, shard: Path) -> str | None:
        """Copy a shard as soon as it is complete; a failure is returned, not raised: the
        run goes on, and the shard is copied again at the end or by the next run."""
        try:
            self.push(shard, f"shards/{shard.name}")
        except (OSError, pa.ArrowException) as exc:
            return f"{shard.name}: {exc}"
        return None

    def push_outputs(self, local: Path) -> None:
        """After a finished run: any shard still missing, the stage cache, the results."""
        try:
            self.push_missing_shards(local)
            if (local / CACHE).is_file():
                self.push(local / CACHE, CACHE)
            for name in OUTPUTS:
                if (local / name).is_file():
                    self.push(local / name, name)
        except (OSError, pa.ArrowException) as exc:
            raise RemoteFolderError(
                f"the run finished in the staging folder {local}, but copying it to "
                f"{self.uri} failed: {exc}. Run the same command again to finish the copy "
                "(no clip is computed again)"
            ) from None

    def _download(self, relative: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with (
                self.filesystem.open_input_stream(self._path(relative)) as src,
                tmp.open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst, _CHUNK)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def _fsspec_filesystem(uri: str, arrow_error: Exception) -> tuple[pafs.FileSystem, str]:
    """Schemes pyarrow does not know, through fsspec (which has many more)."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise RemoteFolderError(
            f"cannot open the run folder {uri}: {arrow_error}; pyarrow knows s3://, gs://, "
            "abfs://, hdfs:// and file://; for other schemes install it with: pip install fsspec"
        ) from None
    try:
        filesystem, root = url_to_fs(uri)
    except (ImportError, ValueError, OSError) as exc:
        raise RemoteFolderError(f"cannot open the run folder {uri}: {exc}") from None
    handler = pafs.FSSpecHandler(filesystem)
    return pafs.PyFileSystem(handler), str(root)
