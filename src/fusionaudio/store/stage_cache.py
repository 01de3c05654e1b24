"""Per-stage cache of cues, addressed by content (media hash + stage + stage config).

One small JSON file per entry, fanned out by key prefix; an entry is written atomically
the moment a stage finishes a clip, so a killed run loses at most the batch in flight.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fusionaudio.store.atomic import atomic_write_text


class StageCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / f"{key}.json"

    def get(self, stage: str, key: str) -> dict[str, Any] | None:
        path = self._path(stage, key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            value: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError:
            path.unlink(missing_ok=True)  # cannot happen with atomic writes; heal anyway
            return None
        return value

    def put(self, stage: str, key: str, value: dict[str, Any]) -> None:
        atomic_write_text(self._path(stage, key), json.dumps(value, ensure_ascii=False))
