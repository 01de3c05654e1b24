"""Building the expert stages from the config and checking that every need is met."""

from __future__ import annotations

from fusionaudio.backends.openai_http import ServerSettings
from fusionaudio.config import LLMConfig, RunConfig, ServerConfig
from fusionaudio.stages.base import (
    ACCOMPANIMENT_16K,
    AUDIO_16K_MONO,
    MEDIA_VIEWS,
    VIEWS,
    VOCALS_16K,
    Stage,
)
from fusionaudio.stages.experts.asr import AsrStage
from fusionaudio.stages.experts.audio_description import AudioDescriptionStage
from fusionaudio.stages.experts.given_tags import GivenTagsStage
from fusionaudio.stages.experts.music import MusicStage
from fusionaudio.stages.experts.separation import SeparationStage
from fusionaudio.stages.experts.tagging import TaggingStage
from fusionaudio.stages.experts.vad import VadStage
from fusionaudio.stages.experts.vision import VisionStage
from fusionaudio.stages.experts.voice import VoiceStage
from fusionaudio.stages.fusion.fusion import FusionStage
from fusionaudio.stages.fusion.llm_choice import SHARED_BACKENDS, LLMSettings, SharedLLM
from fusionaudio.stages.fusion.qa import QAStage
from fusionaudio.stages.quality.clap_score import ClapScoreStage


class GraphError(Exception):
    """The enabled stages cannot run together (a need nobody produces)."""


def _server(config: ServerConfig | None) -> ServerSettings | None:
    if config is None:
        return None
    return ServerSettings(**config.model_dump())


def build_stages(config: RunConfig) -> list[Stage]:
    """The enabled experts in dependency order, each built from its config section."""
    ex = config.experts
    stages: list[Stage] = []
    if ex.given_tags.enabled:
        stages.append(GivenTagsStage())
    if ex.vad.enabled:
        v = ex.vad
        stages.append(
            VadStage(
                v.backend,
                v.threshold,
                v.min_speech_s,
                v.min_silence_s,
                v.batch_size,
                v.workers,
                v.threads,
            )
        )
    if ex.tagging.enabled:
        t = ex.tagging
        stages.append(
            TaggingStage(
                config.models_dir,
                t.backend,
                t.top_k,
                t.timeline_top_k,
                t.timeline_min_confidence,
                t.posterior_min,
                t.batch_size,
                t.workers,
                t.threads,
                t.precision,
            )
        )
    separated = ex.separation.enabled
    if separated:
        s = ex.separation
        stages.append(
            SeparationStage(
                s.backend,
                s.model_path,
                s.model_name,
                s.device,
                workers=s.workers,
                threads=s.threads,
            )
        )
    if ex.asr.enabled:
        a = ex.asr
        stages.append(
            AsrStage(
                config.models_dir,
                audio_view=VOCALS_16K if separated else AUDIO_16K_MONO,
                backend=a.backend,
                model=a.model,
                device=a.device,
                beam_size=a.beam_size,
                compute_type=a.compute_type,
                dtype=a.dtype,
                language=a.language,
                min_speech_s=a.min_speech_s,
                hallucination_filter=a.hallucination_filter,
                batch_size=a.batch_size,
                workers=a.workers,
                threads=a.threads,
            )
        )
    if ex.voice.enabled:
        vo = ex.voice
        stages.append(
            VoiceStage(
                audio_view=VOCALS_16K if separated else AUDIO_16K_MONO,
                backend=vo.backend,
                use_tagging=ex.tagging.enabled,
                max_speech_s=vo.max_speech_s,
                min_speech_s=vo.min_speech_s,
                workers=vo.workers,
            )
        )
    if ex.audio_description.enabled:
        d = ex.audio_description
        stages.append(
            AudioDescriptionStage(
                d.backend,
                d.model,
                _server(d.server),
                d.device,
                d.min_event_confidence,
                d.max_events,
                workers=d.workers,
            )
        )
    if ex.music.enabled:
        m = ex.music
        stages.append(
            MusicStage(
                audio_view=ACCOMPANIMENT_16K if separated else AUDIO_16K_MONO,
                backend=m.backend,
                model=m.model,
                server=_server(m.server),
                device=m.device,
                gate_threshold=m.gate_threshold,
                workers=m.workers,
            )
        )
    if ex.vision.enabled:
        vi = ex.vision
        stages.append(
            VisionStage(
                vi.backend,
                vi.model,
                _server(vi.server),
                vi.device,
                vi.top_k,
                vi.min_confidence,
                vi.ocr,
                workers=vi.workers,
                threads=vi.threads,
            )
        )
    experts = tuple(stage.produces for stage in stages)
    if config.fusion.enabled:
        f = config.fusion
        fusion_llm = _llm(f.llm, config)
        qa_llm = fusion_llm if config.qa.llm is None else _llm(config.qa.llm, config)
        # fusion and QA naming the same vLLM engine or server share one client
        shared = (
            SharedLLM(fusion_llm)
            if fusion_llm.backend in SHARED_BACKENDS and qa_llm == fusion_llm
            else None
        )
        stages.append(
            FusionStage(
                fusion_llm,
                wants=experts,
                prompt_style=f.prompt_style,
                prompt_file=f.prompt_file,
                max_tokens=f.max_tokens,
                temperature=f.temperature,
                max_attempts=f.max_attempts,
                seed=f.seed,
                workers=f.workers,
                batch_size=f.batch_size,
                shared=shared,
            )
        )
        if config.quality.enabled:
            qc = config.quality
            stages.append(ClapScoreStage(qc.scorer, qc.model, qc.device, workers=qc.workers))
        if config.qa.enabled:
            q = config.qa
            stages.append(
                QAStage(
                    qa_llm,
                    wants=experts,
                    pairs=q.pairs,
                    llm_pairs=q.llm_pairs,
                    prompt_file=q.prompt_file,
                    max_tokens=q.max_tokens,
                    temperature=q.temperature,
                    max_attempts=q.max_attempts,
                    seed=q.seed,
                    workers=q.workers,
                    batch_size=q.batch_size,
                    shared=shared,
                )
            )
    check_graph(stages)
    return stages


def _llm(config: LLMConfig, run: RunConfig) -> LLMSettings:
    return LLMSettings(
        backend=config.backend,
        model=config.model,
        models_dir=run.models_dir,
        server=_server(config.server),
        json_mode=config.json_mode,
        n_ctx=config.n_ctx,
        threads=config.threads,
        tensor_parallel_size=config.tensor_parallel_size,
    )


def check_graph(stages: list[Stage]) -> None:
    """Every need is a media view, or a cue or view of an earlier stage; names are unique."""
    produced: set[str] = set()
    derived: set[str] = set()
    for stage in stages:
        if stage.produces in produced:
            raise GraphError(f"two stages produce {stage.produces!r}")
        for need in stage.needs:
            if need not in MEDIA_VIEWS and need not in produced and need not in derived:
                raise GraphError(
                    f"stage {stage.name!r} needs {need!r}, which no earlier enabled stage produces"
                )
        for want in stage.wants:
            if want not in produced:
                raise GraphError(
                    f"stage {stage.name!r} wants {want!r}, which no earlier stage produces"
                )
        produced.add(stage.produces)
        derived.update(stage.provides_views)


def cue_needs(stage: Stage) -> tuple[str, ...]:
    return tuple(n for n in stage.needs if n not in VIEWS)


def view_needs(stage: Stage) -> tuple[str, ...]:
    return tuple(n for n in stage.needs if n in VIEWS)


def media_view_needs(stage: Stage) -> tuple[str, ...]:
    """The views the loader must decode (derived views come from stages)."""
    return tuple(n for n in stage.needs if n in MEDIA_VIEWS)
