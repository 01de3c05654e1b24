"""Building the expert stages from the config and checking that every need is met."""

from __future__ import annotations

from fusionaudio.backends.openai_http import ServerSettings, ServerSlots
from fusionaudio.config import ExpertsConfig, LLMConfig, RunConfig
from fusionaudio.stages.base import MEDIA_VIEWS, VIEWS, Stage
from fusionaudio.stages.fusion.fusion import FusionStage
from fusionaudio.stages.fusion.llm_choice import SHARED_BACKENDS, LLMSettings, SharedLLM
from fusionaudio.stages.fusion.qa import QAStage
from fusionaudio.stages.quality.clap_score import ClapScoreStage
from fusionaudio.stages.settings import BuildContext, RoleConfig, server_settings


class GraphError(Exception):
    """The enabled stages cannot run together (a need nobody produces)."""


def _servers(config: RunConfig) -> list[ServerSettings]:
    """Every server an enabled stage talks to, for one limit per server."""
    ex = config.experts
    sections = [
        (ex.audio_description.enabled, ex.audio_description.server),
        (ex.music.enabled, ex.music.server),
        (ex.vision.enabled, ex.vision.server),
        (config.fusion.enabled, config.fusion.llm.server),
        (
            config.fusion.enabled and config.qa.enabled,
            config.qa.llm.server if config.qa.llm else None,
        ),
    ]
    return [s for on, section in sections if on and (s := server_settings(section)) is not None]


def expert_roles(experts: ExpertsConfig) -> tuple[RoleConfig, ...]:
    """The expert roles in dependency order: a stage may use the cues and views of the
    roles above it (ASR and voice need VAD; voice, description and music read tagging;
    separation provides the stems ASR, voice and music listen to)."""
    return (
        experts.given_tags,
        experts.vad,
        experts.tagging,
        experts.separation,
        experts.asr,
        experts.voice,
        experts.audio_description,
        experts.music,
        experts.vision,
    )


def build_stages(config: RunConfig) -> list[Stage]:
    """The enabled experts in dependency order, each built from its config section."""
    ex = config.experts
    servers = ServerSlots.for_servers(_servers(config))
    context = BuildContext(
        models_dir=config.models_dir,
        separated=ex.separation.enabled,
        tagging=ex.tagging.enabled,
        servers=servers,
    )
    stages = [role.build(context) for role in expert_roles(ex) if role.enabled]
    experts = tuple(stage.produces for stage in stages)
    if config.fusion.enabled:
        f = config.fusion
        fusion_llm = _llm(f.llm, config)
        qa_llm = fusion_llm if config.qa.llm is None else _llm(config.qa.llm, config)
        # fusion and QA naming the same vLLM engine or server share one client
        shared = (
            SharedLLM(fusion_llm, servers)
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
                servers=servers,
            )
        )
        if config.quality.enabled:
            stages.append(ClapScoreStage(config.quality))
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
                    servers=servers,
                )
            )
    check_graph(stages)
    return stages


def _llm(config: LLMConfig, run: RunConfig) -> LLMSettings:
    return LLMSettings(
        backend=config.backend,
        model=config.model,
        models_dir=run.models_dir,
        server=server_settings(config.server),
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
