"""Loading a transformers model and its processor the same way for every backend:
local-only by default (nothing fetched at run time), on the requested device and dtype."""

from __future__ import annotations

from typing import Any


def load_pretrained(
    model_class: Any,
    processor_class: Any,
    model: str,
    device: str,
    dtype: str | None,
    local_files_only: bool,
) -> tuple[Any, Any, str]:
    """(processor, model in eval mode on ``device``, revision)."""
    import torch

    processor = processor_class.from_pretrained(model, local_files_only=local_files_only)
    kwargs: dict[str, Any] = {"local_files_only": local_files_only}
    if dtype is not None:
        kwargs["dtype"] = getattr(torch, dtype)
    loaded = model_class.from_pretrained(model, **kwargs).to(device)
    loaded.eval()
    revision = str(getattr(loaded.config, "_commit_hash", None) or "local")
    return processor, loaded, revision
