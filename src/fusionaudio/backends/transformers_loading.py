"""Loading a transformers model and its processor the same way for every backend:
local-only by default (nothing fetched at run time), on the requested device and dtype.

The dtype defaults by device: bfloat16 on CUDA (the paper's models are 7B to 72B, and
fp32 would halve throughput and double memory for no gain in their outputs), float32
elsewhere (CPUs have no fast bf16 path here). It is never left to transformers' own
default, so what ran is always what the fingerprint says.
"""

from __future__ import annotations

from typing import Any

from fusionaudio.backends.model_files import package_version
from fusionaudio.backends.model_identity import content_identity

DTYPES = ("float32", "bfloat16", "float16")


def default_dtype(device: str) -> str:
    """bfloat16 on CUDA, float32 anywhere else."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def resolve_dtype(dtype: str | None, device: str) -> str:
    """The dtype a backend loads in: the one asked for, else the device's default."""
    resolved = dtype or default_dtype(device)
    if resolved not in DTYPES:
        raise ValueError(f"unknown dtype {resolved!r}; known: {', '.join(DTYPES)}")
    return resolved


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
        dtype: str | None = None,
        local_files_only: bool = True,
        max_new_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.dtype = resolve_dtype(dtype, device)
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
            "weights": content_identity(self.model),
            "dtype": self.dtype,
            "max_new_tokens": str(self.max_new_tokens),
        }
