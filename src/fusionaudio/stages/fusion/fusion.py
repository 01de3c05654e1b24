"""Stage 2: the LLM fuses the cues into one caption by the paper's trust rules.

What code can decide, code decides (evidence.py): the redaction for small models, the
visual "active correction" candidates and the reliability gate. The LLM writes the
caption under a JSON schema; its answer is validated (validate.py) and retried with the
problems fed back; an answer that never passes becomes the clip's error.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from fusionaudio.backends.llm import LLMClient
from fusionaudio.schema import Cue
from fusionaudio.stages.base import Stage, StageInput
from fusionaudio.stages.experts.prompts import Prompt
from fusionaudio.stages.fusion.evidence import (
    Evidence,
    build_evidence,
    render_paper,
    render_small,
    uncertain_reason,
)
from fusionaudio.stages.fusion.generation import generate_validated
from fusionaudio.stages.fusion.llm_choice import LLMSettings
from fusionaudio.stages.fusion.prompts import load_fusion_prompt
from fusionaudio.stages.fusion.validate import (
    UNCERTAIN,
    check_grounding,
    check_leaks,
    check_text_quality,
    check_transcript_copy,
    check_visual,
    content_words,
)

PromptStyle = Literal["small", "paper"]

CAPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ambiguities": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "caption": {"type": "string"},
    },
    "required": ["ambiguities", "caption"],
    "additionalProperties": False,
}


def audio_vocabulary(ev: Evidence) -> set[str]:
    text = " ".join(
        [
            *ev.confident_sounds,
            *ev.possible_sounds,
            *ev.events,
            ev.description or "",
            ev.music or "",
        ]
    )
    return set(content_words(text))


def visual_labels(cues: dict[str, Cue]) -> list[str]:
    vision = cues.get("vision")
    if vision is None or vision.output.get("generated"):
        return []
    return sorted(
        {o["label"] for f in vision.output.get("frames", []) for o in f.get("objects", [])}
    )


class FusionStage(Stage):
    name = "fusion"
    needs = ()
    produces = "fusion"

    def __init__(
        self,
        llm: LLMSettings,
        wants: tuple[str, ...],
        prompt_style: PromptStyle = "small",
        max_tokens: int = 300,
        temperature: float = 0.2,
        max_attempts: int = 3,
        seed: int = 0,
        batch_size: int = 1,
        workers: int = 1,
    ) -> None:
        self.llm = llm
        self.wants = wants
        self.prompt_style = prompt_style
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_attempts = max_attempts
        self.seed = seed
        self.batch_size = batch_size
        self.workers = workers
        self.resources = llm.resources()
        self._client: LLMClient | None = None
        # Digest of each accepted caption -> its clip: 16 bytes a clip, even for millions.
        self._captions: dict[bytes, str] = {}
        self._captions_lock = threading.Lock()

    _prompt: Prompt | None = None

    def prompt(self) -> Prompt:
        """Read once: it is consulted on every attempt (the examples are checked for copies)."""
        if self._prompt is None:
            self._prompt = load_fusion_prompt(f"fusion_{self.prompt_style}")
        return self._prompt

    def fingerprint(self) -> dict[str, Any]:
        return {
            "llm": self.llm.fingerprint(),
            "prompt": self.prompt().version,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "max_attempts": self.max_attempts,
            "seed": self.seed,
        }

    def setup(self) -> None:
        self._client = self.llm.make()
        self._client.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        return [self._fuse(item) for item in batch]

    def _fuse(self, item: StageInput) -> Cue:
        client = self._client
        if client is None:
            raise RuntimeError("FusionStage.setup() was not called")
        started = time.perf_counter()
        cues = dict(item.cues)
        media = item.media
        duration = 0.0 if media is None else media.window_end_s - media.window_start_s
        ev = build_evidence(cues, duration, silent=bool(media and media.silent))
        prompt = self.prompt()
        reason = uncertain_reason(ev)
        if reason is not None:
            gated = {"uncertain": True, "reason": reason, "decided_by": "code", "attempts": 0}
            return self.cue(client, gated, time.perf_counter() - started).with_prompt_version(
                prompt.version
            )
        evidence_text = render_small(ev) if self.prompt_style == "small" else render_paper(ev)
        tag = "evidence" if self.prompt_style == "small" else "inputs"
        messages = prompt.messages(f"<{tag}>\n{evidence_text}\n</{tag}>")
        result = generate_validated(
            client,
            messages,
            lambda answer: self._check(answer, ev, cues, item.clip.clip_id),
            CAPTION_SCHEMA,
            "caption",
            self.max_tokens,
            self.temperature,
            self.seed,
            self.max_attempts,
        )
        caption, ambiguities = result.value
        output: dict[str, Any]
        if caption == UNCERTAIN:
            output = {
                "uncertain": True,
                "reason": "the LLM's reliability gate",
                "decided_by": "llm",
            }
        else:
            output = {
                "uncertain": False,
                "caption": caption,
                "ambiguities": ambiguities,
                "rejected": result.rejected,
                "evidence_facts": ev.facts,
                "visual_candidates": ev.visual_candidates,
            }
        output["attempts"] = result.attempts
        output["tokens"] = result.tokens
        return self.cue(client, output, time.perf_counter() - started).with_prompt_version(
            prompt.version
        )

    def _check(
        self, answer: dict[str, Any] | None, ev: Evidence, cues: dict[str, Cue], clip_id: str
    ) -> tuple[tuple[str, list[str]], list[str]]:
        if answer is None:
            return ("", []), ["not a JSON object"]
        caption = answer.get("caption")
        ambiguities = answer.get("ambiguities", [])
        if not isinstance(caption, str) or not isinstance(ambiguities, list):
            return ("", []), ["JSON does not match the schema"]
        caption = " ".join(caption.split())
        ambiguities = [str(a).strip() for a in ambiguities if str(a).strip()]
        if caption == UNCERTAIN:
            return (caption, ambiguities), []
        text = " ".join([caption, *ambiguities])
        problems = check_text_quality(caption)
        problems += check_leaks(text)
        problems += check_transcript_copy(text, ev.transcript)
        problems += check_visual(text, visual_labels(cues), audio_vocabulary(ev))
        problems += check_grounding(
            caption, ev.voice_present, ev.music_present, self.prompt().example_captions
        )
        if not problems:
            with self._captions_lock:
                digest = hashlib.blake2b(caption.lower().encode(), digest_size=16).digest()
                other = self._captions.get(digest)
                if other is not None and other != clip_id:
                    problems.append(f"identical to the caption of clip {other!r}")
                else:
                    self._captions[digest] = clip_id
        return (caption, ambiguities), problems
