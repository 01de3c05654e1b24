"""The records of a run.

Records describe media, they never hold it: ids, paths, content hashes, offsets in
seconds. Every serialised record names its ``kind`` and ``schema_version`` so that
readers dispatch on the name, never on which keys happen to be present.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

SCHEMA_VERSION = 1

ClipStatus = Literal["ok", "filtered", "uncertain", "error"]
CLIP_STATUSES: tuple[ClipStatus, ...] = ("ok", "filtered", "uncertain", "error")


def _header(kind: str) -> dict[str, Any]:
    return {"kind": kind, "schema_version": SCHEMA_VERSION}


def _check_kind(data: dict[str, Any], kind: str) -> None:
    if data.get("kind") != kind:
        raise ValueError(f"expected a {kind!r} record, got kind={data.get('kind')!r}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{kind} record has schema_version {version!r}; this reader knows 1")


@dataclass(frozen=True)
class Tag:
    """A label supplied with a clip (for example an AudioSet label), optionally scored."""

    label: str
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Tag:
        conf = data.get("confidence")
        return Tag(label=str(data["label"]), confidence=None if conf is None else float(conf))


@dataclass(frozen=True)
class Clip:
    """One unit of work: a media file, or a time window of one."""

    clip_id: str
    source: str
    tags: tuple[Tag, ...] = ()
    start_s: float = 0.0
    end_s: float | None = None
    segment_index: int | None = None
    root: str | None = None
    """The folder ``source`` must resolve inside (symlinks followed); None: anywhere."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **_header("clip"),
            "clip_id": self.clip_id,
            "source": self.source,
            "tags": [t.to_dict() for t in self.tags],
            "start_s": self.start_s,
            "end_s": self.end_s,
            "segment_index": self.segment_index,
            "root": self.root,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Clip:
        _check_kind(data, "clip")
        return Clip(
            clip_id=data["clip_id"],
            source=data["source"],
            tags=tuple(Tag.from_dict(t) for t in data.get("tags", [])),
            start_s=float(data.get("start_s", 0.0)),
            end_s=data.get("end_s"),
            segment_index=data.get("segment_index"),
            root=data.get("root"),
        )


@dataclass(frozen=True)
class Provenance:
    """Where a cue, caption or QA pair came from, precisely enough to reproduce it."""

    stage: str
    backend: str
    model_id: str
    model_revision: str
    config_hash: str
    elapsed_s: float
    prompt_version: str | None = None
    # Who wrote a caption or QA pair: "llm", or "template" when code realised the plan
    # after the model's answers failed validation. None for cues.
    realized_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stage": self.stage,
            "backend": self.backend,
            "model_id": self.model_id,
            "model_revision": self.model_revision,
            "config_hash": self.config_hash,
            "elapsed_s": self.elapsed_s,
            "prompt_version": self.prompt_version,
        }
        if self.realized_by is not None:
            data["realized_by"] = self.realized_by
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Provenance:
        return Provenance(
            stage=data["stage"],
            backend=data["backend"],
            model_id=data["model_id"],
            model_revision=data["model_revision"],
            config_hash=data["config_hash"],
            elapsed_s=float(data["elapsed_s"]),
            prompt_version=data.get("prompt_version"),
            realized_by=data.get("realized_by"),
        )


@dataclass(frozen=True)
class Cue:
    """One expert's view of one clip. ``output`` is JSON-serialisable and expert-specific."""

    expert: str
    backend: str
    model: str
    output: dict[str, Any]
    provenance: Provenance

    def with_prompt_version(self, version: str) -> Cue:
        return replace(self, provenance=replace(self.provenance, prompt_version=version))

    def to_dict(self) -> dict[str, Any]:
        return {
            **_header("cue"),
            "expert": self.expert,
            "backend": self.backend,
            "model": self.model,
            "output": self.output,
            "provenance": self.provenance.to_dict(),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Cue:
        _check_kind(data, "cue")
        return Cue(
            expert=data["expert"],
            backend=data["backend"],
            model=data["model"],
            output=data["output"],
            provenance=Provenance.from_dict(data["provenance"]),
        )


@dataclass(frozen=True)
class Caption:
    """The fused description of what can be heard, with the ambiguities the LLM listed."""

    text: str
    ambiguities: tuple[str, ...]
    provenance: Provenance

    def to_dict(self) -> dict[str, Any]:
        return {
            **_header("caption"),
            "text": self.text,
            "ambiguities": list(self.ambiguities),
            "provenance": self.provenance.to_dict(),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Caption:
        _check_kind(data, "caption")
        return Caption(
            text=data["text"],
            ambiguities=tuple(data.get("ambiguities", [])),
            provenance=Provenance.from_dict(data["provenance"]),
        )


@dataclass(frozen=True)
class QAPair:
    """A question about the clip, its answer, and the reasoning style it exercises."""

    question: str
    answer: str
    type: str
    provenance: Provenance
    facts: tuple[str, ...] = ()  # ids of the caption-plan facts the answer rests on

    def to_dict(self) -> dict[str, Any]:
        return {
            **_header("qa_pair"),
            "question": self.question,
            "answer": self.answer,
            "type": self.type,
            "facts": list(self.facts),
            "provenance": self.provenance.to_dict(),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> QAPair:
        _check_kind(data, "qa_pair")
        return QAPair(
            question=data["question"],
            answer=data["answer"],
            type=data["type"],
            provenance=Provenance.from_dict(data["provenance"]),
            facts=tuple(data.get("facts", [])),
        )


@dataclass(frozen=True)
class MediaSummary:
    """What decoding found: the source's streams, the analysed window and its loudness."""

    media_hash: str
    container: str
    source_duration_s: float | None
    source_sample_rate: int | None
    source_channels: int | None
    has_video: bool
    window_start_s: float
    window_end_s: float
    truncated: bool
    rms_dbfs: float
    peak_dbfs: float
    silent: bool
    decoder: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "media_hash": self.media_hash,
            "container": self.container,
            "source_duration_s": self.source_duration_s,
            "source_sample_rate": self.source_sample_rate,
            "source_channels": self.source_channels,
            "has_video": self.has_video,
            "window_start_s": self.window_start_s,
            "window_end_s": self.window_end_s,
            "truncated": self.truncated,
            "rms_dbfs": self.rms_dbfs,
            "peak_dbfs": self.peak_dbfs,
            "silent": self.silent,
            "decoder": self.decoder,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> MediaSummary:
        return MediaSummary(**data)


@dataclass
class ClipResult:
    """The one output record per input clip: the contract of ``results.jsonl``."""

    clip_id: str
    source: str
    status: ClipStatus
    error: str | None
    duration_s: float | None
    media: MediaSummary | None = None
    cues: dict[str, Cue] = field(default_factory=dict)
    caption: Caption | None = None
    qa: list[QAPair] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **_header("clip_result"),
            "clip_id": self.clip_id,
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "duration_s": self.duration_s,
            "media": None if self.media is None else self.media.to_dict(),
            "cues": {name: cue.to_dict() for name, cue in self.cues.items()},
            "caption": None if self.caption is None else self.caption.to_dict(),
            "qa": [pair.to_dict() for pair in self.qa],
            "scores": dict(self.scores),
            "warnings": list(self.warnings),
            "provenance": dict(self.provenance),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ClipResult:
        _check_kind(data, "clip_result")
        status = data["status"]
        if status not in CLIP_STATUSES:
            raise ValueError(f"unknown clip status {status!r}")
        return ClipResult(
            clip_id=data["clip_id"],
            source=data["source"],
            status=status,
            error=data.get("error"),
            duration_s=data.get("duration_s"),
            media=None if data.get("media") is None else MediaSummary.from_dict(data["media"]),
            cues={name: Cue.from_dict(c) for name, c in data.get("cues", {}).items()},
            caption=None if data.get("caption") is None else Caption.from_dict(data["caption"]),
            qa=[QAPair.from_dict(q) for q in data.get("qa", [])],
            scores={k: float(v) for k, v in data.get("scores", {}).items()},
            warnings=list(data.get("warnings", [])),
            provenance=dict(data.get("provenance", {})),
        )


_READERS: dict[str, Any] = {
    "clip": Clip.from_dict,
    "cue": Cue.from_dict,
    "caption": Caption.from_dict,
    "qa_pair": QAPair.from_dict,
    "clip_result": ClipResult.from_dict,
}


def record_from_dict(data: dict[str, Any]) -> Clip | Cue | Caption | QAPair | ClipResult:
    """Read any serialised record by its declared ``kind``."""
    kind = data.get("kind")
    reader = _READERS.get(str(kind))
    if reader is None:
        raise ValueError(f"unknown record kind {kind!r}")
    record: Clip | Cue | Caption | QAPair | ClipResult = reader(data)
    return record
