"""Quality: the CLAP-style scores, the filter decision, calibration and claim checks."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fusionaudio.calibrate import calibrate, operating_point, read_ratings
from fusionaudio.cli import cli
from fusionaudio.config import RunConfig
from fusionaudio.media.audio import AudioView
from fusionaudio.pipeline.run import run
from fusionaudio.schema import Clip, Cue, Provenance
from fusionaudio.stages.base import AUDIO_16K_MONO, StageInput
from fusionaudio.stages.experts.music import MusicConfig, MusicStage
from fusionaudio.stages.experts.tagging import TaggingConfig, TaggingStage
from fusionaudio.stages.experts.vad import VadConfig, VadStage
from fusionaudio.stages.quality.claims import check_claims
from fusionaudio.stages.settings import BuildContext
from tests.media_factory import EXAMPLES, example_audio
from tests.openai_server import ServerScript, serve

TRUE_CAPTIONS = {
    "speech_fox.wav": "A man speaks clearly in a calm, synthetic voice in a quiet room.",
    "music_pingus.ogg": "Upbeat electronic video game music with a bright synthesizer melody and a steady beat.",
    "engine_start.mp3": "A car engine starts, revs loudly and idles, like a motor vehicle on a road.",
    "video_cat.mp4": "A woman talks in a soft, even voice, close to the microphone.",
}
PROV = Provenance("x", "x", "x", "x", "x", 0.0)


@pytest.fixture(scope="module")
def expert_cues(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Cue]]:
    tagger = TaggingStage(TaggingConfig(), BuildContext(tmp_path_factory.mktemp("models")))
    vad, music = VadStage(VadConfig()), MusicStage(MusicConfig())
    for stage in (tagger, vad, music):
        stage.setup()
    out = {}
    for name in TRUE_CAPTIONS:
        signal = example_audio(name)
        item = StageInput(
            Clip(name, name), {AUDIO_16K_MONO: AudioView(signal[None, :], 16_000)}, {}
        )
        cues = {"tagging": tagger([item])[0], "vad": vad([item])[0]}
        cues["music"] = music([StageInput(item.clip, item.views, cues)])[0]
        out[name] = cues
    return out


@pytest.fixture(scope="module")
def pseudo_clap():  # type: ignore[no-untyped-def]
    from fusionaudio.backends.pseudo_clap import PseudoClap

    scorer = PseudoClap()
    scorer.setup()
    return scorer


def test_true_captions_outscore_mismatched_ones(expert_cues, pseudo_clap) -> None:  # type: ignore[no-untyped-def]
    names = list(TRUE_CAPTIONS)
    captions = [TRUE_CAPTIONS[n] for n in names]
    wins, pairs, true_scores, other_scores = 0, 0, [], []
    for name in names:
        scores = dict(
            zip(
                names,
                pseudo_clap.score(expert_cues[name]["tagging"].output["posteriors"], captions),
                strict=True,
            )
        )
        true_scores.append(scores[name])
        for other in names:
            if other != name:
                other_scores.append(scores[other])
                pairs += 1
                wins += scores[name] > scores[other]
    separation = float(np.mean(true_scores) - np.mean(other_scores))
    print(
        f"pseudo-CLAP: true {np.mean(true_scores):.3f}, mismatched {np.mean(other_scores):.3f}, separation {separation:.3f}, {wins}/{pairs} pairs"
    )
    assert wins >= 0.75 * pairs
    assert separation > 0.1


def test_claims_flag_speech_over_music(expert_cues) -> None:  # type: ignore[no-untyped-def]
    music = {k: c.output for k, c in expert_cues["music_pingus.ogg"].items()}
    speech = {k: c.output for k, c in expert_cues["speech_fox.wav"].items()}
    assert "claims speech, but voice activity found none" in check_claims(
        "A man speaks over the music.", music
    )
    assert any("dog" in f for f in check_claims("A dog barks over a melody.", music))
    assert check_claims("Upbeat game music with a bright synth melody.", music) == []
    assert "claims music, but the music gate stayed shut" in check_claims(
        "A man sings a song with guitar.", speech
    )
    assert check_claims("A man speaks calmly.", speech) == []
    assert check_claims("A man speaks calmly, with no background noise or music.", speech) == []


def brute_force_best(values: list[float], positive: list[bool], beta: float) -> float:
    grid = np.linspace(min(values) - 0.01, max(values) + 0.01, 20_001)
    return max(operating_point(values, positive, float(t), beta).f_beta for t in grid)


def test_calibration_finds_the_f_beta_optimum() -> None:
    rng = random.Random(7)
    scores, ratings = {}, {}
    for i in range(200):
        bad = rng.random() < 0.3
        scores[f"c{i}"] = round(rng.gauss(0.05 if bad else 0.25, 0.08), 4)
        ratings[f"c{i}"] = bad
    result = calibrate(scores, ratings, beta=1.05)
    ids = sorted(scores)
    best_brute = brute_force_best([scores[i] for i in ids], [ratings[i] for i in ids], 1.05)
    assert result.best.f_beta == pytest.approx(best_brute, abs=1e-12)
    assert 0.05 < result.best.threshold < 0.25
    assert result.rated == 200 and result.positives == sum(ratings.values())
    check = operating_point(
        [scores[i] for i in ids], [ratings[i] for i in ids], result.best.threshold, 1.05
    )
    assert check == result.best


def test_ratings_files(tmp_path: Path) -> None:
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("clip_id,score\na,1\nb,2\nc,3\nd,5\n")
    assert read_ratings(csv_file) == {"a": True, "b": True, "c": False, "d": False}
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"clip_id": "a", "label": "hallucination"}\n{"clip_id": "b", "label": 0}\n')
    assert read_ratings(jsonl) == {"a": True, "b": False}
    bad = tmp_path / "bad.csv"
    bad.write_text("clip_id,score\na,9\n")
    with pytest.raises(ValueError, match="not in 1-5"):
        read_ratings(bad)


def _scripted_caption(body: dict) -> str:  # type: ignore[type-arg]
    return json.dumps(
        {
            "ambiguities": [],
            "caption": "Upbeat video game music with a bright synthesizer melody plays steadily.",
        }
    )


def _config(base: RunConfig, url: str, threshold: float) -> RunConfig:
    data = base.model_dump(mode="json")
    data["experts"]["music"]["enabled"] = True
    data["fusion"] = {
        **data["fusion"],
        "enabled": True,
        "llm": {"backend": "openai", "server": {"base_url": url, "model": "m", "backoff_s": 0.01}},
    }
    data["quality"] = {**data["quality"], "enabled": True, "thresholds": {"pseudo_clap": threshold}}
    return RunConfig.model_validate(data)


def test_filter_scores_every_caption_and_a_new_threshold_runs_no_model(
    tmp_path: Path, config: RunConfig
) -> None:
    script = ServerScript(reply=_scripted_caption)
    with serve(script) as url:
        run(EXAMPLES / "music_pingus.ogg", tmp_path / "run", _config(config, url, 0.2))
        (record,) = map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())
        assert record["status"] == "ok" and record["scores"]["clap"] > 0.2
        calls = len(script.requests)
        summary = run(EXAMPLES / "music_pingus.ogg", tmp_path / "run", _config(config, url, 0.99))
    assert len(script.requests) == calls  # no LLM call: fusion came from the cache
    assert summary.stages["clap"].cached == 1 and summary.stages["fusion"].cached == 1
    (record,) = map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())
    assert record["status"] == "filtered" and record["scores"]["clap"] < 0.99
    assert any(w.startswith("filtered: pseudo_clap score") for w in record["warnings"])
    assert record["caption"] is not None  # kept, with the reason


def test_calibrate_command_writes_a_plot(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lines = []
    rng = random.Random(3)
    ratings = ["clip_id,score"]
    for i in range(40):
        bad = i % 3 == 0
        lines.append(
            json.dumps(
                {
                    "clip_id": f"c{i}",
                    "status": "ok",
                    "scores": {"clap": (0.02 if bad else 0.3) + rng.random() * 0.1},
                }
            )
        )
        ratings.append(f"c{i},{1 if bad else 4}")
    (run_dir / "results.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "ratings.csv").write_text("\n".join(ratings) + "\n")
    out = CliRunner().invoke(
        cli, ["calibrate", str(run_dir), "--ratings", str(tmp_path / "ratings.csv")]
    )
    assert out.exit_code == 0, out.output
    assert (
        "14 notable hallucinations" in out.output and "precision 1.000, recall 1.000" in out.output
    )
    png = run_dir / "calibration_pr.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_transformers_clap_loads_a_checkpoint_and_scores(tmp_path: Path) -> None:
    from fusionaudio.stages.base import AUDIO_48K_MONO
    from fusionaudio.stages.quality.clap_score import ClapScoreStage, QualityConfig
    from tests.tiny_models import tiny_clap

    folder = tiny_clap(tmp_path / "clap")
    stage = ClapScoreStage(QualityConfig(scorer="clap_transformers", model=str(folder)))
    stage.setup()
    signal = example_audio("engine_start.mp3", 48_000)
    fusion = Cue("fusion", "t", "t", {"uncertain": False, "caption": "A car engine revs."}, PROV)
    item = StageInput(
        Clip("e", "e"), {AUDIO_48K_MONO: AudioView(signal[None, :], 48_000)}, {"fusion": fusion}
    )
    (cue,) = stage([item])
    assert -1.0 <= cue.output["score"] <= 1.0 and cue.backend == "clap_transformers"
    assert stage._clap is not None
    a, b = stage._clap.score(signal, ["A car engine revs.", "Rain falls on a roof."])
    assert a != b  # the text tower distinguishes the captions
