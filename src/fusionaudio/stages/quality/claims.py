"""Claim checks, beyond the paper: the caption's claims held against the cues.

Cheap, explicit and model-free: speech claimed where voice activity found none, music
claimed where the music gate stayed shut, a named sound source that the confident tags
contradict. Findings are warnings; the config can make them filter.
"""

from __future__ import annotations

from typing import Any

from fusionaudio.stages.fusion.validate import MUSIC_WORDS, SPEECH_WORDS, affirmed_words

# A caption word naming a source -> the AudioSet labels that would support it.
SOURCES: dict[str, tuple[str, ...]] = {
    "dog": (
        "Dog",
        "Bark",
        "Howl",
        "Growling",
        "Whimper (dog)",
        "Bow-wow",
        "Yip",
        "Domestic animals, pets",
        "Animal",
    ),
    "cat": ("Cat", "Meow", "Purr", "Hiss", "Caterwaul", "Domestic animals, pets", "Animal"),
    "bird": (
        "Bird",
        "Bird vocalization, bird call, bird song",
        "Chirp, tweet",
        "Animal",
        "Wild animals",
    ),
    "car": ("Car", "Vehicle", "Motor vehicle (road)", "Engine", "Traffic noise, roadway noise"),
    "engine": (
        "Engine",
        "Vehicle",
        "Motor vehicle (road)",
        "Car",
        "Idling",
        "Accelerating, revving, vroom",
    ),
    "rain": ("Rain", "Raindrop", "Rain on surface", "Water"),
    "thunder": ("Thunder", "Thunderstorm"),
    "siren": (
        "Siren",
        "Police car (siren)",
        "Ambulance (siren)",
        "Fire engine, fire truck (siren)",
        "Emergency vehicle",
    ),
    "baby": ("Baby cry, infant cry", "Babbling", "Child speech, kid speaking"),
    "applause": ("Applause", "Clapping", "Crowd"),
    "laughter": ("Laughter", "Giggle", "Chuckle, chortle", "Baby laughter", "Belly laugh"),
    "water": (
        "Water",
        "Stream",
        "Waterfall",
        "Ocean",
        "Waves, surf",
        "Rain",
        "Drip",
        "Pour",
        "Splash, splatter",
    ),
    "gun": ("Gunshot, gunfire", "Machine gun", "Artillery fire", "Explosion"),
    "piano": ("Piano", "Electric piano", "Keyboard (musical)", "Music"),
    "guitar": ("Guitar", "Electric guitar", "Acoustic guitar", "Bass guitar", "Music"),
}


def check_claims(
    caption: str, cues: dict[str, Any], confident: float = 0.5, support: float = 0.05
) -> list[str]:
    """Findings for one caption; ``cues`` maps expert name to its output dict."""
    words = affirmed_words(caption)
    findings = []
    vad = cues.get("vad")
    singing = False
    tags: dict[str, float] = {}
    if cues.get("tagging") is not None:
        tags = {str(k): float(v) for k, v in cues["tagging"].get("posteriors", {}).items()}
        singing = any(
            tags.get(label, 0.0) >= support for label in ("Singing", "Choir", "Rapping", "Humming")
        )
    talk = SPEECH_WORDS - {"vocal", "vocals", "sing", "sings", "singing", "singer"}
    if vad is not None and not vad.get("has_speech") and words & talk and not singing:
        findings.append("claims speech, but voice activity found none")
    music = cues.get("music")
    if music is not None and not music.get("gate", {}).get("open") and words & MUSIC_WORDS:
        findings.append("claims music, but the music gate stayed shut")
    if tags:
        sure = [label for label, p in tags.items() if p >= confident]
        for word, supporting in SOURCES.items():
            if (
                word in words
                and sure
                and not any(tags.get(label, 0.0) >= support for label in supporting)
            ):
                findings.append(
                    f"names a {word}, which the confident tags ({', '.join(sure)}) do not support"
                )
    return findings
