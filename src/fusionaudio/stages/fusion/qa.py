"""Question-answer pairs about a captioned clip, each grounded in named caption-plan facts.

The paper does not describe its QA generation; the released data shows about 4 pairs per
clip across six styles, which is what this stage writes. The model sees only the plan's
facts, numbered, and cites the ones each answer uses; an answer is held against the
plan like a caption (no source, place, number, speech or music the plan lacks). Pairs
that pass are kept across attempts; when too few pass, code writes pairs from the plan
(``realized_by: template``). A QA failure never costs the clip its caption.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fusionaudio.backends.llm import GenerationRequest, LLMClient, LLMReply
from fusionaudio.backends.openai_http import ServerSlots
from fusionaudio.schema import Cue
from fusionaudio.stages.base import Resources, Stage, StageInput
from fusionaudio.stages.experts.prompts import Prompt, read_prompt_file
from fusionaudio.stages.fusion.fusion import PLAN_VERSION, clip_plan
from fusionaudio.stages.fusion.llm_choice import (
    LLMSettings,
    SharedLLM,
    open_client,
)
from fusionaudio.stages.fusion.plan import CaptionPlan
from fusionaudio.stages.fusion.prompts import load_fusion_prompt
from fusionaudio.stages.fusion.realize import render_plan, template_pairs
from fusionaudio.stages.fusion.validate import parse_json_object
from fusionaudio.stages.fusion.verify import stated_facts, verify_caption

QA_PROMPT_VERSION = 2


class PlanWriter:
    """Stands in for the LLM when ``llm_pairs`` is 0: code writes every pair from the plan."""

    name = "template"
    model_id = "caption plan (template_pairs)"
    revision = f"plan-v{PLAN_VERSION}"

    def setup(self) -> None:
        return None

    def fingerprint(self) -> dict[str, str]:
        return {"writer": self.model_id, "revision": self.revision}

    def generate(self, *args: Any, **kwargs: Any) -> LLMReply:
        raise RuntimeError("the plan writer does not generate text")

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[LLMReply]:
        if requests:
            raise RuntimeError("the plan writer does not generate text")
        return []


@dataclass(frozen=True)
class _Job:
    """One captioned clip's QA: where its output goes, its plan and how many pairs."""

    index: int
    plan: CaptionPlan
    caption: str
    total: int
    wanted: int


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
                        "facts": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "minItems": 1,
                            "maxItems": 3,
                        },
                    },
                    "required": ["type", "question", "answer", "facts"],
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
        llm_pairs: int = 2,
        prompt_file: Path | None = None,
        max_tokens: int = 400,
        temperature: float = 0.3,
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
        self.pairs = pairs
        self.llm_pairs = llm_pairs
        self.prompt_file = prompt_file
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_attempts = max_attempts
        self.seed = seed
        self.batch_size = batch_size
        self.workers = workers
        # Writing every pair from the plan needs no model: no threads, no GPU to reserve.
        self.resources = llm.resources() if llm_pairs > 0 else Resources(cpus=1)
        self._client: LLMClient | None = None

    _prompt: Prompt | None = None

    def prompt(self) -> Prompt:
        if self._prompt is None:
            self._prompt = (
                read_prompt_file(self.prompt_file)
                if self.prompt_file is not None
                else load_fusion_prompt("qa", QA_PROMPT_VERSION)
            )
        return self._prompt

    def fingerprint(self) -> dict[str, Any]:
        return {
            "llm": self.llm.fingerprint(),
            "prompt": self.prompt().identity,
            "pairs": self.pairs,
            "llm_pairs": self.llm_pairs,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_attempts": self.max_attempts,
            "plan": PLAN_VERSION,
        }

    def setup(self) -> None:
        if self.llm_pairs == 0:  # every pair is written from the plan: load no model
            self._client = PlanWriter()
            return
        self._client = open_client(self.llm, self.shared, self.servers)

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        """The batch's model-written pairs are asked together (one ``generate_batch`` per
        attempt); a clip's elapsed time is its share of the batch's wall time."""
        client = self._client
        if client is None:
            raise RuntimeError("QAStage.setup() was not called")
        started = time.perf_counter()
        prompt = self.prompt()
        jobs: list[_Job] = []
        outputs: list[dict[str, Any]] = []
        for item in batch:
            fusion = item.cues["fusion"].output
            if fusion.get("uncertain"):
                outputs.append({"pairs": [], "skipped": "the caption is uncertain", "attempts": 0})
                continue
            plan = clip_plan(item)
            total = min(self.pairs, max(1, len(plan.facts)))
            jobs.append(
                _Job(len(outputs), plan, fusion["caption"], total, min(self.llm_pairs, total))
            )
            outputs.append({})
        answered = self._llm_pairs(client, prompt, jobs)
        for job, (kept, output) in zip(jobs, answered, strict=True):
            outputs[job.index] = self._with_template_pairs(job, kept, output)
        elapsed = (time.perf_counter() - started) / max(1, len(batch))
        return [
            self.cue(client, output, elapsed).with_prompt_version(prompt.identity)
            for output in outputs
        ]

    @staticmethod
    def _with_template_pairs(
        job: _Job, kept: list[dict[str, Any]], output: dict[str, Any]
    ) -> dict[str, Any]:
        failed = job.wanted - len(kept)
        asked = {p["question"].lower() for p in kept}
        covered = {tuple(p["facts"]) for p in kept}
        extra = [
            p
            for p in template_pairs(job.plan)
            if p["question"].lower() not in asked and tuple(p["facts"]) not in covered
        ][: job.total - len(kept)]
        output["pairs"] = kept + extra
        if failed > 0:
            output["warning"] = (
                f"QA: {failed} of {job.wanted} model-written pairs failed validation after "
                f"{output['attempts']} attempts; written from the plan by code instead"
            )
        return output

    def _llm_pairs(
        self, client: LLMClient, prompt: Prompt, jobs: Sequence[_Job]
    ) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """Up to ``wanted`` model-written pairs per job that pass, kept across attempts."""
        kept: list[list[dict[str, Any]]] = [[] for _ in jobs]
        outputs: list[dict[str, Any]] = [
            {"attempts": 0, "rejected": [], "tokens": {"prompt": 0, "completion": 0}} for _ in jobs
        ]
        base: list[list[dict[str, Any]]] = []
        for job in jobs:
            system = prompt.text.replace("{count}", str(job.wanted)).replace(
                "{types}", ", ".join(QA_TYPES)
            )
            user = (
                f"<caption>\n{job.caption}\n</caption>\n<facts>\n{render_plan(job.plan)}\n</facts>"
            )
            base.append([{"role": "system", "content": system}, {"role": "user", "content": user}])
        messages = [list(b) for b in base]
        pending = [i for i, job in enumerate(jobs) if job.wanted > 0]
        for attempt in range(1, self.max_attempts + 1):
            if not pending:
                break
            requests = [
                GenerationRequest(
                    messages[i],
                    max_tokens=self.max_tokens,
                    temperature=self.temperature + 0.2 * (attempt - 1),
                    json_schema=qa_schema(jobs[i].wanted),
                    seed=self.seed + attempt - 1,
                )
                for i in pending
            ]
            still: list[int] = []
            for i, reply in zip(pending, client.generate_batch(requests), strict=True):
                output = outputs[i]
                output["attempts"] = attempt
                output["tokens"]["prompt"] += reply.prompt_tokens or 0
                output["tokens"]["completion"] += reply.completion_tokens or 0
                good, problems = self._check(parse_json_object(reply.text), jobs[i].plan)
                seen = {p["question"].lower() for p in kept[i]}
                kept[i] += [p for p in good if p["question"].lower() not in seen][
                    : jobs[i].wanted - len(kept[i])
                ]
                if len(kept[i]) >= jobs[i].wanted:
                    continue
                output["rejected"].append(problems)
                feedback = (
                    f"Some pairs were rejected: {'; '.join(problems)}. "
                    "Write the JSON again, following every rule."
                )
                messages[i] = [
                    *base[i],
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": feedback},
                ]
                still.append(i)
            pending = still
        return list(zip(kept, outputs, strict=True))

    @staticmethod
    def _check(
        answer: dict[str, Any] | None, plan: CaptionPlan
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The pairs that pass, and the problems of those that do not."""
        if answer is None or not isinstance(answer.get("pairs"), list):
            return [], ["not a JSON object with a 'pairs' list"]
        ids = [fact.id for fact in plan.facts]
        good: list[dict[str, Any]] = []
        problems: list[str] = []
        for index, raw in enumerate(answer["pairs"], 1):
            if not isinstance(raw, dict):
                problems.append(f"pair {index} is not an object")
                continue
            kind, question, reply = (
                str(raw.get(k, "")).strip() for k in ("type", "question", "answer")
            )
            numbers = [n for n in raw.get("facts", []) if isinstance(n, int)]
            cited = [ids[n - 1] for n in numbers if 1 <= n <= len(ids)]
            found: list[str] = []
            if kind not in QA_TYPES:
                found.append(f"unknown type {kind!r}")
            if not question.endswith("?"):
                found.append("the question does not end with '?'")
            if not cited:
                found.append("cites no fact of the list")
            elif not set(stated_facts(reply, plan)) & set(cited):
                found.append("the answer does not state the facts it cites")
            check = verify_caption(f"{question} {reply}", plan, check_facts=False)
            found += [p for p in check.problems if not p.startswith("too short")]
            if len(reply.split()) < 3:
                found.append("the answer is too short")
            if found:
                problems += [f"pair {index}: {p}" for p in found]
                continue
            good.append(
                {
                    "type": kind,
                    "question": question,
                    "answer": reply,
                    "facts": cited,
                    "realized_by": "llm",
                }
            )
        return good, problems
