"""Loading a transformers model and its processor the same way for every backend:
local-only by default (nothing fetched at run time), on the requested device and dtype."""

from __future__ import annotations

from typing import Any

from fusionaudio.backends.model_files import package_version


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


class TransformersGenerator:
    """What every text-generating transformers backend stores and fingerprints."""

    name = "transformers"
    default_max_new_tokens = 300

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str = "float32",
        local_files_only: bool = True,
        max_new_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.dtype = dtype
        self.local_files_only = local_files_only
        self.max_new_tokens = max_new_tokens or self.default_max_new_tokens
        self.model_id = model
        self.revision = "not-loaded"
        self._processor: Any = None
        self._model: Any = None

    def fingerprint(self) -> dict[str, str]:
        return {
            "package": f"transformers=={package_version('transformers')}",
            "model": self.model,
            "dtype": self.dtype,
            "max_new_tokens": str(self.max_new_tokens),
        }
