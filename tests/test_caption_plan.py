"""The caption plan decided in code, its template realisation and the verifier, without a
model: what a caption may say is decided here, so these tests pin the decisions."""

from __future__ import annotations

from typing import Any

import pytest

from fusionaudio.schema import Cue, Provenance
from fusionaudio.stages.fusion.plan import CaptionPlan, build_plan
from fusionaudio.stages.fusion.realize import realize_template, template_pairs
from fusionaudio.stages.fusion.verify import stated_facts, verify_caption

PROV = Provenance("x", "x", "x", "x", "x", 0.0)


def cue(name: str, output: dict[str, Any]) -> Cue:
    return Cue(name, "test", "test", output, PROV)


def source(
    label: str,
    start: float,
    end: float,
    confidence: float,
    accepted: bool = True,
    kind: str = "specific",
    count: int | None = None,
    bursts: int | None = None,
    why: str = "confident and persistent",
    tags: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "label": label,
        "kind": kind,
        "group": "x",
        "tags": list(tags or (label,)),
        "segments": [{"start_s": start, "end_s": end, "peak": confidence, "mean": confidence}],
        "confidence": confidence,
        "peak": confidence,
        "coverage": (end - start) / 10.0,
        "accepted": accepted,
        "why": why if accepted else "weaker than its sibling Dog",
        "count": count,
        "bursts": bursts,
    }


def dog_and_wolf() -> dict[str, Cue]:
    return {
        "vad": cue("vad", {"has_speech": False, "speech_s": 0.0}),
        "tagging": cue(
            "tagging",
            {
                "posteriors": {"Dog": 0.7, "Bark": 0.6, "Howl": 0.2, "Animal": 0.8},
                "sources": [
                    source("Dog", 0.0, 6.0, 0.7, count=7, bursts=2, tags=("Dog", "Bark")),
                    source("Howl", 1.0, 3.0, 0.2, accepted=False),
                    source("Wind", 6.5, 10.0, 0.4),
                ],
            },
        ),
        "music": cue("music", {"gate": {"open": False}}),
    }


def test_plan_keeps_accepted_sources_in_time_order_with_counts() -> None:
    plan = build_plan(dog_and_wolf(), 10.0, silent=False)
    assert plan.uncertain is None
    assert [s.label for s in plan.sources] == ["Dog", "Wind"]
    assert plan.sources[0].role == "primary" and plan.sources[0].count == 7
    ids = [f.id for f in plan.facts]
    assert ids[:2] == ["source:Dog", "count:Dog"] and "order" in ids
    assert plan.voice is None and plan.music is None
    assert any("could also be" in a for a in plan.ambiguities)


def test_template_caption_states_every_fact_and_passes_verification() -> None:
    plan = build_plan(dog_and_wolf(), 10.0, silent=False)
    caption = realize_template(plan)
    assert "seven times" in caption and "two bursts" in caption
    assert "wolf" not in caption.lower() and "howl" not in caption.lower()
    check = verify_caption(caption, plan)
    assert check.ok, check.problems
    assert set(check.verified) == {f.id for f in plan.facts}


@pytest.mark.parametrize(
    ("caption", "problem"),
    [
        (
            "A dog barks seven times in two bursts, then wind blows, and a wolf howls.",
            "not in the plan",
        ),
        (
            "A dog barks seven times in two bursts, then wind blows while music plays softly.",
            "claims music",
        ),
        ("In a kitchen, a dog barks seven times in two bursts, then the wind blows.", "place"),
        ("A dog barks three times in two bursts, then the wind blows.", "number"),
        ("A dog barks seven times in two bursts while a man talks, then wind blows.", "speech"),
        ("A dog barks seven times in two bursts, and that is all there is to hear.", "leaves out"),
    ],
)
def test_verifier_catches_claims_outside_the_plan(caption: str, problem: str) -> None:
    plan = build_plan(dog_and_wolf(), 10.0, silent=False)
    problems = verify_caption(caption, plan).problems
    assert any(problem in p for p in problems), problems


def test_negated_mentions_are_not_claims() -> None:
    plan = build_plan(dog_and_wolf(), 10.0, silent=False)
    caption = "A dog barks seven times in two bursts, then wind blows; there is no music or speech."
    assert verify_caption(caption, plan).ok


def voice_cues(tags: dict[str, float], voice: dict[str, Any] | None = None) -> dict[str, Cue]:
    cues = {
        "vad": cue("vad", {"has_speech": True, "speech_s": 4.0, "speech_fraction": 0.8}),
        "tagging": cue("tagging", {"posteriors": tags, "sources": []}),
        "asr": cue(
            "asr",
            {"transcribed": True, "text": "ahoj", "language": "cs", "language_probability": 0.9},
        ),
        "music": cue("music", {"gate": {"open": False}}),
    }
    if voice is not None:
        cues["voice"] = cue("voice", voice)
    return cues


def test_voice_needs_the_tagger_to_hear_speech_too() -> None:
    laughing = build_plan(voice_cues({"Laughter": 0.8, "Speech": 0.3}), 5.0, silent=False)
    assert laughing.voice is None and laughing.uncertain is not None
    talking = build_plan(
        voice_cues(
            {"Speech": 0.9},
            {"present": True, "speaker": "adult male", "speaker_confidence": 0.9, "rate": "fast"},
        ),
        5.0,
        silent=False,
    )
    assert talking.voice is not None and talking.voice.language == "Czech"
    caption = realize_template(talking)
    assert caption.startswith("A man speaks in Czech at a fast pace")
    assert verify_caption(caption, talking).ok
    wrong = verify_caption("A woman speaks in Czech at a fast pace.", talking).problems
    assert any("sex" in p for p in wrong)


def test_hedged_speaker_is_hedged_in_the_caption() -> None:
    plan = build_plan(
        voice_cues(
            {"Speech": 0.9}, {"present": True, "speaker": "adult female", "speaker_confidence": 0.4}
        ),
        5.0,
        silent=False,
    )
    caption = realize_template(plan)
    assert "probably an adult female's" in caption
    assert verify_caption(caption, plan).ok


def test_no_confident_source_is_uncertain_and_silence_too() -> None:
    weak = {
        "tagging": cue(
            "tagging",
            {"posteriors": {"Dog": 0.2}, "sources": [source("Dog", 0, 1, 0.2, accepted=False)]},
        ),
        "vad": cue("vad", {"has_speech": False}),
    }
    assert build_plan(weak, 3.0, silent=False).uncertain is not None
    assert "silent" in str(build_plan(dog_and_wolf(), 3.0, silent=True).uncertain)


def test_music_plan_names_only_confident_attributes() -> None:
    cues = {
        "tagging": cue("tagging", {"posteriors": {"Music": 0.9}, "sources": []}),
        "music": cue(
            "music",
            {
                "gate": {"open": True},
                "genres": [
                    {"label": "Electronic music", "score": 0.4},
                    {"label": "Jazz", "score": 0.05},
                ],
                "instruments": [{"label": "Synthesizer", "score": 0.3}],
                "tempo_bpm": 128.2,
                "tempo_confidence": 0.8,
                "key": "A",
                "mode": "minor",
                "key_confidence": 0.2,
            },
        ),
    }
    plan = build_plan(cues, 8.0, silent=False)
    assert plan.music is not None
    assert plan.music.genre == "Electronic music" and plan.music.tempo_bpm == 128
    assert plan.music.key is None  # not confident enough to state
    caption = realize_template(plan)
    assert "128 BPM" in caption and "jazz" not in caption.lower()
    assert verify_caption(caption, plan).ok
    no_music = build_plan(dog_and_wolf(), 10.0, silent=False)
    assert any("claims music" in p for p in verify_caption(caption, no_music).problems)


def test_template_qa_pairs_cite_existing_facts_and_state_them() -> None:
    plan: CaptionPlan = build_plan(dog_and_wolf(), 10.0, silent=False)
    pairs = template_pairs(plan)
    assert len(pairs) >= 3
    ids = {f.id for f in plan.facts}
    for pair in pairs:
        assert pair["question"].endswith("?")
        assert set(pair["facts"]) <= ids
        assert set(pair["facts"]) & set(stated_facts(pair["answer"], plan))
        text = pair["question"] + " " + pair["answer"]
        problems = verify_caption(text, plan, check_facts=False).problems
        assert not [p for p in problems if not p.startswith("too short")], problems


def test_template_captions_differ_when_plans_differ() -> None:
    a = dog_and_wolf()
    b = dog_and_wolf()
    b["tagging"].output["sources"][0]["count"] = 3
    assert realize_template(build_plan(a, 10.0, False)) != realize_template(
        build_plan(b, 10.0, False)
    )


def test_word_forms_compare_equal() -> None:
    from fusionaudio.stages.fusion.lexicon import stem

    for forms in (("bark", "barks", "barking"), ("buzz", "buzzes", "buzzing"),
                  ("crackle", "crackles", "crackling"), ("run", "runs", "running"),
                  ("dog", "dogs"), ("bus", "buses"), ("chime", "chimes", "chiming")):  # fmt: skip
        assert len({stem(f) for f in forms}) == 1, forms


def test_music_is_claimed_only_at_the_decision_point_and_an_instrument_alone_is_a_source() -> None:
    """The gate (0.3) runs the music expert; "music plays" needs the clip's Music posterior
    at 0.5. Under it, a confident, persistent instrument (a gong struck) is the source."""
    gong = {
        "label": "Gong",
        "kind": "music",
        "tags": ["Gong"],
        "segments": [{"start_s": 0.0, "end_s": 6.0, "peak": 0.99, "mean": 0.79}],
        "confidence": 0.79,
        "coverage": 0.9,
        "accepted": True,
        "count": 1,
        "bursts": None,
    }
    music_out = {
        "gate": {"open": True, "music_score": 0.35, "threshold": 0.3},
        "instruments": [{"label": "Gong", "score": 0.6}],
    }
    cues = {
        "tagging": cue("tagging", {"posteriors": {"Music": 0.35, "Gong": 0.6}, "sources": [gong]}),
        "music": cue("music", music_out),
    }
    plan = build_plan(cues, 6.0, silent=False)
    assert plan.music is None
    assert [s.label for s in plan.sources] == ["Gong"]
    caption = realize_template(plan)
    assert "gong" in caption.lower() and "music" not in caption.lower()
    assert verify_caption("A gong is struck once and resounds.", plan).ok
    assert any(
        "claims music" in p for p in verify_caption("Music plays with a gong.", plan).problems
    )

    music_out["gate"]["music_score"] = 0.8
    plan = build_plan(cues, 6.0, silent=False)
    assert plan.music is not None and plan.music.instruments == ("Gong",)
    assert plan.sources == []  # the music plan names the instrument
