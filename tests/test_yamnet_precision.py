"""The float YAMNet rebuilt from the shipped w8a8 graph: what it is, and that it tags real
recordings at least as well as the shipped graph (the reason it is the default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from fusionaudio.backends.yamnet_onnx import YamnetOnnx, log_mel_patches
from tests.real_sounds import decode_16k, labelled_clips

# The AudioSet classes that name each labelled class's source (the ontology's own words):
# the ground truth for "the tagger found it". Classes without a direct AudioSet class
# (generic crowds, "person" laughing as speech, ...) are left out.
AUDIOSET_NAMES = {
    "dog_bark": {"Dog", "Bark", "Bow-wow", "Yip", "Growling", "Whimper (dog)"},
    "cat_meow": {"Cat", "Meow", "Purr", "Caterwaul"},
    "cow_moo": {"Cattle, bovinae", "Moo"},
    "sheep_bleat": {"Sheep", "Bleat", "Goat"},
    "horse": {"Horse", "Neigh, whinny", "Clip-clop"},
    "chicken_rooster": {"Chicken, rooster", "Crowing, cock-a-doodle-doo", "Cluck", "Fowl"},
    "duck_goose": {"Duck", "Goose", "Quack", "Honk"},
    "birds_chirping": {"Bird", "Bird vocalization, bird call, bird song", "Chirp, tweet"},
    "owl_hoot": {"Owl", "Hoot"},
    "insects": {"Insect", "Bee, wasp, etc.", "Buzz", "Cricket", "Mosquito", "Fly, housefly"},
    "frog_croak": {"Frog", "Croak"},
    "rain": {"Rain", "Raindrop", "Rain on surface"},
    "wind": {"Wind", "Rustling leaves", "Wind noise (microphone)"},
    "thunder": {"Thunder", "Thunderstorm"},
    "fire_crackling": {"Fire", "Crackle"},
    "door": {"Door", "Knock", "Slam", "Squeak", "Doorbell", "Sliding door"},
    "applause": {"Applause", "Clapping"},
    "speech_female": {"Speech", "Female speech, woman speaking"},
    "speech_male": {"Speech", "Male speech, man speaking"},
    "singing": {"Singing", "Choir", "Chant"},
    "glass_breaking": {"Glass", "Shatter", "Breaking", "Chink, clink"},
    "bell_gong": {"Bell", "Gong", "Church bell", "Jingle bell", "Ding-dong"},
    "siren": {"Siren", "Emergency vehicle", "Fire engine, fire truck (siren)"},
    "helicopter": {"Helicopter"},
    "explosion": {"Explosion", "Boom", "Burst, pop"},
    "guitar": {"Guitar", "Acoustic guitar", "Plucked string instrument", "Electric guitar"},
    "keyboard_instrument": {"Piano", "Keyboard (musical)", "Organ", "Electric piano"},
    "bowed_strings": {"Violin, fiddle", "Bowed string instrument", "Cello", "String section"},
    "brass": {"Trumpet", "Brass instrument", "Trombone", "French horn"},
    "woodwind": {"Flute", "Wind instrument, woodwind instrument", "Clarinet"},
    "drums": {"Drum", "Drum kit", "Percussion", "Snare drum", "Bass drum", "Tabla"},
}


@pytest.fixture(scope="module")
def taggers(models_dir: Path) -> dict[str, YamnetOnnx]:
    out = {}
    for precision in ("float32", "int8"):
        tagger = YamnetOnnx(models_dir, precision=precision)  # type: ignore[arg-type]
        tagger.setup()
        out[precision] = tagger
    return out


def test_float_graph_has_no_quantisers_and_takes_any_batch(
    taggers: dict[str, YamnetOnnx], models_dir: Path
) -> None:
    path = next((models_dir / "yamnet").glob("*-float32/model.onnx"))
    graph = onnx.load(str(path), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear"}
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    # a whole clip in one call gives the same scores as one patch per call
    signal = decode_16k(next(c.path for c in labelled_clips() if c.label == "dog_bark"))
    together = taggers["float32"].patch_scores(signal)
    session = taggers["float32"]._session
    assert session is not None
    patches = log_mel_patches(signal)
    alone = np.concatenate([session.run(None, {"audio": p[None]})[0] for p in patches])
    np.testing.assert_allclose(together, 1 / (1 + np.exp(-alone)), atol=1e-5)
    assert together.shape == (len(patches), 521)


def test_float_tags_real_recordings_at_least_as_well_as_the_shipped_graph(
    taggers: dict[str, YamnetOnnx],
) -> None:
    clips = [c for c in labelled_clips() if c.label in AUDIOSET_NAMES]
    hits = {"float32": 0, "int8": 0}
    for clip in clips:
        signal = decode_16k(clip.path)
        for precision, tagger in taggers.items():
            mean = tagger.patch_scores(signal).mean(axis=0)
            top3 = {tagger.labels[i] for i in np.argsort(-mean)[:3]}
            hits[precision] += bool(top3 & AUDIOSET_NAMES[clip.label])
    # measured on the 74 clips of these classes: float32 finds the source in its top 3 on
    # 55 (74%) on every CPU so far; the int8 graph's answers depend on the CPU's integer
    # instructions (onnxruntime's u8s8 kernels saturate without VNNI): 45 (61%) on an
    # AVX2 VM, 54 (73%) on one with AVX-512 VNNI. Float is never worse than a near tie.
    assert hits["float32"] >= hits["int8"] - 0.03 * len(clips), hits
    assert hits["float32"] >= 0.7 * len(clips), hits


def test_precision_is_part_of_the_cache_key(models_dir: Path) -> None:
    from fusionaudio.stages.experts.tagging import TaggingConfig, TaggingStage
    from fusionaudio.stages.settings import BuildContext

    context = BuildContext(models_dir)
    assert (
        TaggingStage(TaggingConfig(precision="float32"), context).fingerprint()
        != TaggingStage(TaggingConfig(precision="int8"), context).fingerprint()
    )
