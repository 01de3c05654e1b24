"""Stage 2: the LLM writes the caption plan that code decided, by the paper's trust rules.

What code can decide, code decides: ``plan.py`` picks the sources, their order and counts
and the salient voice, music and recording attributes (with the reliability gate); the
LLM only writes the plan as fluent English (the ``small`` style) or fuses the full cues
(the ``paper`` style, for large models). Either answer is held against the plan
(``verify.py``) and retried with the problems fed back. When every attempt fails, code
realises the plan itself (``realize.py``): a valid clip never loses its caption to a
model that wrote badly, and the record says so (``realized_by: template``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from fusionaudio.backends.llm import LLMClient
from fusionaudio.backends.openai_http import ServerSlots
from fusionaudio.schema import Cue
from fusionaudio.stages.base import Stage, StageInput
from fusionaudio.stages.experts.prompts import Prompt, read_prompt_file
from fusionaudio.stages.fusion.evidence import build_evidence, render_paper
from fusionaudio.stages.fusion.generation import (
    AnswerRejected,
    Ask,
    Validated,
    generate_validated,
)
from fusionaudio.stages.fusion.llm_choice import (
    LLMSettings,
    SharedLLM,
    open_client,
)
from fusionaudio.stages.fusion.plan import CaptionPlan, build_plan
from fusionaudio.stages.fusion.prompts import load_fusion_prompt
from fusionaudio.stages.fusion.realize import realize_template, render_draft
from fusionaudio.stages.fusion.validate import UNCERTAIN, check_example_copy
from fusionaudio.stages.fusion.verify import stated_facts, verify_caption

PromptStyle = Literal["small", "paper"]
PLAN_VERSION = 3  # bump when plan.py, realize.py or verify.py change what a caption says
PROMPT_VERSIONS = {"small": 2, "paper": 1}

CAPTION_SCHEMAS: dict[str, dict[str, Any]] = {
    "small": {
        "type": "object",
        "properties": {"caption": {"type": "string"}},
        "required": ["caption"],
        "additionalProperties": False,
    },
    "paper": {
        "type": "object",
        "properties": {
            "ambiguities": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
            "caption": {"type": "string"},
        },
        "required": ["ambiguities", "caption"],
        "additionalProperties": False,
    },
}


def clip_plan(item: StageInput) -> CaptionPlan:
    """The plan of one clip: fusion and QA both build it, from the same cues."""
    media = item.media
    duration = 0.0 if media is None else media.window_end_s - media.window_start_s
    return build_plan(dict(item.cues), duration, silent=bool(media and media.silent))


class FusionStage(Stage):
    name = "fusion"
    needs = ()
    produces = "fusion"

    def __init__(
        self,
        llm: LLMSettings,
        wants: tuple[str, ...],
        prompt_style: PromptStyle = "small",
        prompt_file: Path | None = None,
        max_tokens: int = 300,
        temperature: float = 0.2,
        max_attempts: int = 3,
        seed: int = 0,
        batch_size: int = 1,
        workers: int = 1,
        shared: SharedLLM | None = None,
        servers: ServerSlots | None = None,
    ) -> None:
        # in-process llama.cpp decodes the batch's answers as parallel sequences
        self.llm = replace(llm, parallel=batch_size)
        self.shared = shared
        self.servers = servers
        self.wants = wants
        self.prompt_style = prompt_style
        self.prompt_file = prompt_file
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
        """Read once: it is consulted on every attempt (the examples are checked for copies)."""
        if self._prompt is None:
            self._prompt = (
                read_prompt_file(self.prompt_file)
                if self.prompt_file is not None
                else load_fusion_prompt(
                    f"fusion_{self.prompt_style}", PROMPT_VERSIONS[self.prompt_style]
                )
            )
        return self._prompt

    def fingerprint(self) -> dict[str, Any]:
        return {
            "llm": self.llm.fingerprint(),
            "prompt": self.prompt().identity,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "max_attempts": self.max_attempts,
            "seed": self.seed,
            "plan": PLAN_VERSION,
        }

    def setup(self) -> None:
        self._client = open_client(self.llm, self.shared, self.servers)

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        """The batch's open captions are generated together (one ``generate_batch`` per
        attempt); a clip's elapsed time is its share of the batch's wall time."""
        client = self._client
        if client is None:
            raise RuntimeError("FusionStage.setup() was not called")
        started = time.perf_counter()
        plans = [clip_plan(item) for item in batch]
        open_ = [i for i, plan in enumerate(plans) if plan.uncertain is None]
        results = generate_validated(
            client,
            [self._ask(batch[i], plans[i]) for i in open_],
            CAPTION_SCHEMAS[self.prompt_style],
            "caption",
            self.max_tokens,
            self.temperature,
            self.seed,
            self.max_attempts,
        )
        outputs = [self._gated(plan) for plan in plans]
        for i, result in zip(open_, results, strict=True):
            outputs[i] = self._output(result, plans[i])
        elapsed = (time.perf_counter() - started) / max(1, len(batch))
        identity = self.prompt().identity
        return [
            self.cue(client, output, elapsed).with_prompt_version(identity) for output in outputs
        ]

    @staticmethod
    def _gated(plan: CaptionPlan) -> dict[str, Any]:
        return {
            "uncertain": True,
            "reason": plan.uncertain,
            "decided_by": "code",
            "attempts": 0,
        }

    def _ask(self, item: StageInput, plan: CaptionPlan) -> Ask[tuple[str, list[str]]]:
        if self.prompt_style == "small":
            user = f"<draft>\n{render_draft(plan)}\n</draft>"
        else:
            media = item.media
            duration = 0.0 if media is None else media.window_end_s - media.window_start_s
            ev = build_evidence(dict(item.cues), duration, silent=False)
            user = f"<inputs>\n{render_paper(ev)}\n</inputs>"
        return Ask(self.prompt().messages(user), lambda answer: self._check(answer, plan))

    def _output(
        self, result: Validated[tuple[str, list[str]]] | AnswerRejected, plan: CaptionPlan
    ) -> dict[str, Any]:
        output: dict[str, Any] = {"uncertain": False}
        if isinstance(result, AnswerRejected):
            output.update(
                caption=realize_template(plan),
                ambiguities=plan.ambiguities,
                realized_by="template",
                fallback_reason=str(result),
                rejected=result.rejected,
                attempts=self.max_attempts,
                tokens=result.tokens,
            )
        else:
            caption, ambiguities = result.value
            if caption == UNCERTAIN:
                output = {
                    "uncertain": True,
                    "reason": "the LLM's reliability gate",
                    "decided_by": "llm",
                }
            else:
                output.update(
                    caption=caption,
                    ambiguities=ambiguities or plan.ambiguities,
                    realized_by="llm",
                    rejected=result.rejected,
                )
            output.update(attempts=result.attempts, tokens=result.tokens)
        if not output["uncertain"]:
            output["verified_facts"] = stated_facts(output["caption"], plan)
            output["plan"] = plan.to_dict()
        return output

    def _check(
        self, answer: dict[str, Any] | None, plan: CaptionPlan
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
        problems = verify_caption(caption, plan).problems
        problems += check_example_copy(caption, self.prompt().example_captions)
        return (caption, ambiguities), problems
