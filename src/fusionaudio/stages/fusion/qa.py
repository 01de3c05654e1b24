"""Question-answer pairs about a captioned clip, grounded in its caption and cues.

The paper does not describe its QA generation; the released data shows about 4 pairs per
clip across six styles, which is what this stage writes. Pairs are JSON-validated and
checked like captions (no speech content, no visual details, no cue formatting).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fusionaudio.backends.llm import LLMClient
from fusionaudio.schema import Cue
from fusionaudio.stages.base import Stage, StageInput
from fusionaudio.stages.experts.prompts import Prompt
from fusionaudio.stages.fusion.evidence import build_evidence, render_small
from fusionaudio.stages.fusion.fusion import audio_vocabulary, visual_labels
from fusionaudio.stages.fusion.generation import generate_validated
from fusionaudio.stages.fusion.llm_choice import LLMSettings
from fusionaudio.stages.fusion.prompts import load_fusion_prompt
from fusionaudio.stages.fusion.validate import (
    check_leaks,
    check_text_quality,
    check_transcript_copy,
    check_visual,
    content_words,
)

QA_TYPES = (
    "acoustic_analysis",
    "contextual_reasoning",
    "temporal_dynamics",
    "interpretation",
    "foreground_background",
    "cause",
)


def qa_schema(count: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "pairs": {
                "type": "array",
                "minItems": count,
                "maxItems": count,
                "items": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": list(QA_TYPES)},
                        "question": {"type": "string"},
                        "answer": {"type": "string"},
                    },
                    "required": ["type", "question", "answer"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["pairs"],
        "additionalProperties": False,
    }


class QAStage(Stage):
    name = "qa"
    needs = ("fusion",)
    produces = "qa"

    def __init__(
        self,
        llm: LLMSettings,
        wants: tuple[str, ...],
        pairs: int = 4,
        max_tokens: int = 600,
        temperature: float = 0.3,
        max_attempts: int = 3,
        seed: int = 0,
        batch_size: int = 1,
        workers: int = 1,
    ) -> None:
        self.llm = llm
        self.wants = wants
        self.pairs = pairs
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_attempts = max_attempts
        self.seed = seed
        self.batch_size = batch_size
        self.workers = workers
        self.resources = llm.resources()
        self._client: LLMClient | None = None

    _prompt: Prompt | None = None

    def prompt(self) -> Prompt:
        if self._prompt is None:
            self._prompt = load_fusion_prompt("qa")
        return self._prompt

    def fingerprint(self) -> dict[str, Any]:
        return {
            "llm": self.llm.fingerprint(),
            "prompt": self.prompt().version,
            "pairs": self.pairs,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
        }

    def setup(self) -> None:
        self._client = self.llm.make()
        self._client.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        return [self._ask(item) for item in batch]

    def _ask(self, item: StageInput) -> Cue:
        client = self._client
        if client is None:
            raise RuntimeError("QAStage.setup() was not called")
        started = time.perf_counter()
        prompt = self.prompt()
        fusion = item.cues["fusion"].output
        if fusion.get("uncertain"):
            output = {"pairs": [], "skipped": "the caption is uncertain", "attempts": 0}
            return self.cue(client, output, time.perf_counter() - started).with_prompt_version(
                prompt.version
            )
        cues = dict(item.cues)
        media = item.media
        duration = 0.0 if media is None else media.window_end_s - media.window_start_s
        ev = build_evidence(cues, duration, silent=False)
        count = self.pairs
        types = ", ".join(QA_TYPES)
        system = prompt.text.replace("{count}", str(count)).replace("{types}", types)
        user = f"<caption>\n{fusion['caption']}\n</caption>\n<evidence>\n{render_small(ev)}\n</evidence>"
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        grounding = set(content_words(fusion["caption"])) | audio_vocabulary(ev)
        seen = visual_labels(cues)
        result = generate_validated(
            client,
            messages,
            lambda answer: self._check(answer, count, ev.transcript, seen, grounding),
            qa_schema(count),
            "QA",
            self.max_tokens,
            self.temperature,
            self.seed,
            self.max_attempts,
        )
        output = {
            "pairs": result.value,
            "attempts": result.attempts,
            "rejected": result.rejected,
            "tokens": result.tokens,
        }
        return self.cue(client, output, time.perf_counter() - started).with_prompt_version(
            prompt.version
        )

    @staticmethod
    def _check(
        answer: dict[str, Any] | None,
        count: int,
        transcript: str | None,
        seen: list[str],
        grounding: set[str],
    ) -> tuple[list[dict[str, str]], list[str]]:
        if answer is None or not isinstance(answer.get("pairs"), list):
            return [], ["not a JSON object with a 'pairs' list"]
        pairs: list[dict[str, str]] = []
        problems: list[str] = []
        questions: set[str] = set()
        for index, raw in enumerate(answer["pairs"], 1):
            if not isinstance(raw, dict):
                problems.append(f"pair {index} is not an object")
                continue
            kind, question, reply = (
                str(raw.get(k, "")).strip() for k in ("type", "question", "answer")
            )
            if kind not in QA_TYPES:
                problems.append(f"pair {index} has unknown type {kind!r}")
            if not question.endswith("?"):
                problems.append(f"question {index} does not end with '?'")
            if question.lower() in questions:
                problems.append(f"question {index} repeats an earlier one")
            questions.add(question.lower())
            text = f"{question} {reply}"
            found = check_text_quality(reply, min_words=4) + check_leaks(text)
            found += check_transcript_copy(text, transcript) + check_visual(text, seen, grounding)
            descriptive = kind not in {"interpretation", "contextual_reasoning"}
            if descriptive and not set(content_words(reply)) & grounding:
                found.append("answer shares no word with the caption or evidence")
            problems += [f"pair {index}: {p}" for p in found]
            pairs.append({"type": kind, "question": question, "answer": reply})
        if len(pairs) != count:
            problems.append(f"{len(pairs)} pairs instead of {count}")
        return pairs, problems
