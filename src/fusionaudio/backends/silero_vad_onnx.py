"""Silero VAD v6 (ONNX) through onnxruntime, with no torch.

Clips of a batch are run in lockstep: the model takes a batch dimension, so one
``session.run`` advances every clip by one 32 ms chunk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from fusionaudio.backends.model_files import package_dir, package_version, sha256_file

SAMPLE_RATE = 16_000
CHUNK = 512
CONTEXT = 64


class SileroVadOnnx:
    name = "silero_onnx"
    model_id = "snakers4/silero-vad-v6 (silero_vad.onnx)"
    frame_s = CHUNK / SAMPLE_RATE

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._session: ort.InferenceSession | None = None
        self.revision = "not-loaded"

    @staticmethod
    def model_path() -> Path:
        return package_dir("silero_vad", "silero-vad==6.2.3") / "data" / "silero_vad.onnx"

    @staticmethod
    def fingerprint() -> dict[str, str]:
        return {"package": f"silero-vad=={package_version('silero-vad')}"}

    def setup(self) -> None:
        path = self.model_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.revision = "sha256:" + sha256_file(path)[:16]

    def speech_probabilities(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """Per-chunk speech probability for each mono 16 kHz signal in ``batch``."""
        if self._session is None:
            raise RuntimeError("SileroVadOnnx.setup() was not called")
        if not batch:
            return []
        counts = [max(1, -(-len(x) // CHUNK)) for x in batch]
        steps = max(counts)
        padded = np.zeros((len(batch), steps * CHUNK), dtype=np.float32)
        for row, signal in enumerate(batch):
            padded[row, : len(signal)] = signal
        state = np.zeros((2, len(batch), 128), dtype=np.float32)
        context = np.zeros((len(batch), CONTEXT), dtype=np.float32)
        rate = np.array(SAMPLE_RATE, dtype=np.int64)
        probs = np.zeros((len(batch), steps), dtype=np.float32)
        for step in range(steps):
            chunk = padded[:, step * CHUNK : (step + 1) * CHUNK]
            x = np.concatenate([context, chunk], axis=1)
            out, state = self._session.run(None, {"input": x, "state": state, "sr": rate})
            probs[:, step] = np.asarray(out).reshape(-1)
            context = x[:, -CONTEXT:]
        return [probs[row, : counts[row]] for row in range(len(batch))]
