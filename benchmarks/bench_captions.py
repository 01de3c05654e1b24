"""Captions of real recordings against their references: the offline preset now, and the
code before the caption plan (the baseline, from git, in the same run).

The labelled recordings in ../shared/data/sounds each have a class, its sources and a
one-line reference caption. For each run this prints: clips lost (status error), clips
uncertain, the share of captions naming the primary source, captions naming a source the
reference does not support, false speech and false music claims, verified facts per
caption, caption length, the distinct-caption ratio and the fusion + QA seconds per clip.
The keyword lists that decide "names the dog" are written here, in the benchmark, not in
the product.

Usage:
  python benchmarks/bench_captions.py [--limit N] [--baseline-limit M] [--baseline-ref REV]
                                      [--out DIR] [--skip-baseline] [--measure-only]
Clips are taken one class at a time (round robin over classes), so any limit covers as
many classes as it can.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SOUNDS = REPO.parent / "shared" / "data" / "sounds"
BASELINE_REF = "ce8f872"  # main before the caption plan (issue 13)

# What names each class's primary source in a caption (stems are compared).
CLASS_WORDS: dict[str, list[str]] = {
    "dog_bark": ["dog", "bark", "puppy", "canine", "woof", "yip"],
    "cat_meow": ["cat", "meow", "kitten", "feline", "mew"],
    "cow_moo": ["cow", "moo", "cattle", "ox", "bovine", "bull"],
    "sheep_bleat": ["sheep", "bleat", "lamb", "goat"],
    "horse": ["horse", "neigh", "whinny", "hoof", "hooves", "clip-clop", "gallop", "pony"],
    "chicken_rooster": ["rooster", "chicken", "hen", "cock", "crow", "cluck", "poultry", "fowl"],
    "duck_goose": ["duck", "goose", "geese", "quack", "honk"],
    "birds_chirping": ["bird", "chirp", "tweet", "birdsong", "song", "warble"],
    "crow_caw": ["crow", "raven", "caw", "bird"],
    "owl_hoot": ["owl", "hoot", "bird"],
    "insects": ["insect", "bee", "cricket", "buzz", "wasp", "fly", "cicada"],
    "frog_croak": ["frog", "croak", "toad", "ribbit"],
    "wolf_coyote": ["wolf", "wolves", "coyote", "howl"],
    "marine_mammal": ["sea lion", "seal", "whale", "walrus", "bark"],
    "rain": ["rain", "raindrop", "drizzle", "downpour", "shower", "water", "drip", "patter"],
    "wind": ["wind", "gust", "breeze", "gale"],
    "thunder": ["thunder", "thunderstorm", "storm", "rumble"],
    "water": ["water", "river", "stream", "splash", "wave", "sea", "ocean", "surf", "brook"],
    "fire_crackling": ["fire", "crackle", "flame", "burn"],
    "footsteps": ["footstep", "step", "walk", "walking", "foot", "feet"],
    "door": ["door", "knock", "slam"],
    "laughing": ["laugh", "laughter", "giggle", "chuckle"],
    "coughing_sneezing": ["cough", "sneeze"],
    "screaming": ["scream", "shriek", "yell", "shout", "screech"],
    "crowd": ["crowd", "people", "chatter", "murmur", "audience", "cheer"],
    "applause": ["applause", "applaud", "clap", "audience"],
    "speech_female": ["voice", "speak", "speech", "woman", "female", "talk", "speaker"],
    "speech_male": ["voice", "speak", "speech", "man", "male", "talk", "speaker"],
    "singing": ["sing", "choir", "voice", "vocal", "chant", "song"],
    "glass_breaking": ["glass", "shatter", "break", "smash"],
    "wood_cutting": ["saw", "chainsaw", "wood", "chop", "axe", "cut", "tree", "log"],
    "hammering": ["hammer", "anvil", "mallet", "strike", "pound"],
    "household_appliance": ["machine", "sewing", "appliance", "motor", "whir"],
    "bell_gong": ["bell", "gong", "chime", "ring", "toll"],
    "siren": ["siren", "wail", "emergency", "fire truck"],
    "car_horn": ["horn", "honk", "car", "vehicle"],
    "road_vehicle": ["car", "truck", "engine", "vehicle", "traffic", "bus", "motor"],
    "train": ["train", "locomotive", "rail", "railway", "steam", "whistle", "vehicle", "engine"],
    "airplane": ["airplane", "aircraft", "plane", "jet", "propeller", "engine", "vehicle"],
    "helicopter": ["helicopter", "rotor", "chopper", "aircraft", "vehicle", "engine"],
    "gunshot": ["gun", "gunshot", "shot", "gunfire", "machine gun", "shotgun", "fire"],
    "explosion": ["explosion", "blast", "boom", "explode", "bang"],
    "guitar": ["guitar", "strum", "pluck", "string"],
    "keyboard_instrument": ["piano", "organ", "keyboard", "harpsichord"],
    "bowed_strings": ["violin", "viola", "cello", "string", "bow", "fiddle"],
    "brass": ["trumpet", "trombone", "brass", "horn", "tuba"],
    "woodwind": ["flute", "clarinet", "woodwind", "oboe", "saxophone", "recorder"],
    "drums": ["drum", "tabla", "tom", "percussion", "snare", "cymbal", "beat"],
    "hand_percussion": ["tambourine", "shaker", "cymbal", "percussion", "rattle", "maraca"],
    "electronic_music": ["synth", "synthesizer", "electronic", "drum machine", "beat"],
}
# Source words that name none of the classes above: a caption using one names a source
# that no reference in this set supports.
OTHER_SOURCE_WORDS = """alarm motorcycle motorbike ambulance police baby child kid engine
    boat ship clock tick telephone phone typing keyboard vacuum blender microwave fan
    drill machine lion tiger monkey pig goat mouse rat snake elephant bear chainsaw
    whistle thunderstorm crowd cheer children dishes cutlery toilet zipper camera printer
    computer television radio tv video game gong cymbal insect car truck bus""".split()
GENERIC_OK = {"animal", "creature", "sound", "noise"}
# Phrases that describe the recording or the music, not a source: removed before the
# source check ("like a telephone line" is a band limit, "beats per minute" a tempo).
NOT_SOURCE_PHRASES = re.compile(
    r"like (a|an old) (telephone|phone)( line| call)?|telephone[- ]line|narrow-band|beats? per minute",
    re.I,
)
# Classes whose sounds include a broader source (a crow is a bird, a horn belongs to a car).
SPEECH_WORDS = {"speak", "speech", "talk", "say", "narrat", "convers", "announc", "word"}
MUSIC_WORDS = {
    "music",
    "musical",
    "melody",
    "melodic",
    "tune",
    "song",
    "instrumental",
    "chord",
    "harmony",
}
NEGATIONS = {"no", "not", "without", "never", "nor", "absent", "free"}


def stem(word: str) -> str:
    w = word.lower()
    for suffix in ("ings", "ing", "ies", "es", "s", "ed"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix):
            return w[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return w


def affirmed_stems(text: str) -> list[str]:
    tokens = re.findall(r"[a-z]+", text.lower())
    return [stem(t) for i, t in enumerate(tokens) if not NEGATIONS & set(tokens[max(0, i - 4) : i])]


def mentions(text: str, words: list[str] | set[str]) -> set[str]:
    stems = affirmed_stems(text)
    joined = " " + " ".join(stems) + " "
    found = set()
    for word in words:
        key = " ".join(stem(w) for w in word.split())
        # a compound counts ("raindrop" names rain, "thunderstorm" thunder), a mere prefix
        # does not ("single" is no "sing", "scatter" no "cat")
        if f" {key} " in joined or any(
            s.startswith(key) and len(key) >= 4 and len(s) - len(key) >= 3 for s in stems
        ):
            found.add(word)
    return found


def source_words() -> set[str]:
    every = {w for words in CLASS_WORDS.values() for w in words}
    return (
        (every | set(OTHER_SOURCE_WORDS)) - GENERIC_OK - {"fire", "cut", "strike", "ring", "step"}
    )


def labels(root: Path) -> list[dict[str, Any]]:
    with (root / "labels.jsonl").open() as f:
        return [json.loads(line) for line in f if line.strip()]


def pick(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_class[row["class"]].append(row)
    order: list[dict[str, Any]] = []
    depth = 0
    while len(order) < len(rows):
        for name in sorted(by_class):
            if depth < len(by_class[name]):
                order.append(by_class[name][depth])
        depth += 1
    return order[:limit] if limit else order


def stage_inputs(rows: list[dict[str, Any]], root: Path, folder: Path) -> dict[str, dict[str, Any]]:
    """Links to the chosen clips, named so that each clip id maps back to its label."""
    folder.mkdir(parents=True, exist_ok=True)
    by_id = {}
    for row in rows:
        src = root / row["path"]
        name = f"{row['class']}__{src.name}"
        (folder / name).symlink_to(src)
        by_id[name] = row  # a file's clip id is its file name
    return by_id


def run_pipeline(
    python_path: Path | None, inputs: Path, out: Path, log: Path, extra: tuple[str, ...] = ()
) -> None:
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
    cmd = [sys.executable, "-m", "fusionaudio", "run", str(inputs), "--out", str(out), "--quiet"]
    cmd += list(extra)
    with log.open("w") as f:
        subprocess.run(cmd, env=env, check=True, stdout=f, stderr=subprocess.STDOUT)


def measure(
    run_dir: Path, by_id: dict[str, dict[str, Any]], plans: dict[str, Any] | None
) -> dict[str, Any]:
    records = [json.loads(line) for line in (run_dir / "results.jsonl").open()]
    records = [r for r in records if r["clip_id"] in by_id]
    run_json = json.loads((run_dir / "run.json").read_text())
    stages = run_json["stages"]
    captions: list[tuple[str, str]] = []
    lost = uncertain = filtered = named = unsupported = false_speech = false_music = 0
    facts: list[int] = []
    lengths: list[int] = []
    examples = []
    vocabulary = source_words()
    for record in records:
        row = by_id[record["clip_id"]]
        status = record["status"]
        if status == "error":
            lost += 1
            continue
        if status == "uncertain":
            uncertain += 1
            continue
        text = (record.get("caption") or {}).get("text")
        if not text:
            continue
        filtered += status == "filtered"
        captions.append((record["clip_id"], text))
        own = CLASS_WORDS[row["class"]]
        hit = bool(mentions(text, own))
        named += hit
        own_tokens = {stem(t) for word in own for t in word.split()}
        sources_text = NOT_SOURCE_PHRASES.sub(" ", text)
        # A word of the own class that also names another class's source ("horn") is fine.
        extra = {
            w
            for w in mentions(sources_text, vocabulary) - set(own)
            if not {stem(t) for t in w.split()} <= own_tokens
        }
        unsupported += bool(extra)
        stems = set(affirmed_stems(text))
        claims_speech = any(s.startswith(w) for s in stems for w in SPEECH_WORDS)
        claims_music = any(s.startswith(w) for s in stems for w in MUSIC_WORDS)
        false_speech += claims_speech and not row["has_speech"]
        false_music += claims_music and not row["has_music"]
        lengths.append(len(text.split()))
        if plans is not None and record["clip_id"] in plans:
            facts.append(plans[record["clip_id"]](text))
        examples.append(
            {
                "clip": record["clip_id"],
                "reference": row["caption"],
                "caption": text,
                "named": hit,
                "unsupported": sorted(extra),
                "status": status,
            }
        )
    n = len(records)
    c = max(1, len(captions))
    computed = max(1, stages.get("fusion", {}).get("computed", 0))
    qa_computed = max(1, stages.get("qa", {}).get("computed", 0))
    return {
        "clips": n,
        "lost": lost,
        "uncertain": uncertain,
        "captioned": len(captions),
        "filtered": filtered,
        "primary_named_of_captioned": named / c,
        "primary_named_of_all": named / max(1, n),
        "unsupported_source": unsupported / c,
        "false_speech": false_speech / c,
        "false_music": false_music / c,
        "verified_facts": sum(facts) / max(1, len(facts)) if facts else None,
        "words": sum(lengths) / max(1, len(lengths)),
        "distinct": len({t.lower() for _, t in captions}) / c,
        "fusion_s_per_clip": stages.get("fusion", {}).get("busy_s", 0.0) / computed,
        "qa_s_per_clip": stages.get("qa", {}).get("busy_s", 0.0) / qa_computed,
        "examples": examples,
    }


def run_baseline(ref: str, tmp: Path, out: Path) -> None:
    """The pipeline as it was at ``ref``, from a git worktree, on the baseline's clips."""
    worktree = tmp / "baseline-src"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), ref],
        check=True,
        capture_output=True,
    )
    try:
        run_pipeline(worktree / "src", tmp / "base", out / "baseline", out / "baseline.log")
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
            check=False,
            capture_output=True,
        )


def row_text(name: str, m: dict[str, Any]) -> str:
    facts = "n/a" if m["verified_facts"] is None else f"{m['verified_facts']:.1f}"
    return (
        f"| {name} | {m['clips']} | {m['lost']} | {m['uncertain']} | "
        f"{m['primary_named_of_captioned']:.0%} ({m['primary_named_of_all']:.0%} of all) | "
        f"{m['unsupported_source']:.0%} | {m['false_speech']:.0%} / {m['false_music']:.0%} | "
        f"{facts} | {m['words']:.1f} | {m['distinct']:.0%} | "
        f"{m['fusion_s_per_clip']:.1f} + {m['qa_s_per_clip']:.1f} |"
    )


HEADER = (
    "| run | clips | lost | uncertain | primary source named | unsupported source | "
    "false speech / music | verified facts | words | distinct | fusion + QA s/clip |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sounds", type=Path, default=SOUNDS)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--baseline-limit", type=int, default=20)
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--measure-only", action="store_true", help="measure the run folders already in --out"
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_captions")
    args = parser.parse_args()
    rows = labels(args.sounds)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}"
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        new_rows = pick(rows, args.limit)
        by_id = stage_inputs(new_rows, args.sounds, Path(tmp) / "new")
        if not args.measure_only:
            # the staged inputs are symlinks into the sounds folder: allow that folder
            root = ("--root", str(args.sounds.resolve()))
            run_pipeline(None, Path(tmp) / "new", out / "new", out / "new.log", root)
        plans = plan_counters(out / "new")
        results["new"] = measure(out / "new", by_id, plans)
        if not args.skip_baseline:
            base_rows = pick(rows, args.baseline_limit)
            base_ids = stage_inputs(base_rows, args.sounds, Path(tmp) / "base")
            if not args.measure_only:
                run_baseline(args.baseline_ref, Path(tmp), out)
            results["baseline"] = measure(out / "baseline", base_ids, plans)
            same = {k: v for k, v in by_id.items() if k in base_ids}
            results["new, baseline's clips"] = measure(out / "new", same, plans)
    print(HEADER)
    for name in ("baseline", "new, baseline's clips", "new"):
        if name in results:
            print(row_text(name, results[name]))
    (out / "bench_captions.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print("\nSix captions beside their references:")
    shown = results["new"]["examples"]
    step = max(1, len(shown) // 6)
    for example in shown[::step][:6]:
        print(
            f'- {example["clip"]}: reference "{example["reference"]}"\n  caption: "{example["caption"]}"'
        )
    print(f"\nfull results: {out / 'bench_captions.json'}")


def plan_counters(run_dir: Path) -> dict[str, Any]:
    """Per clip of the new run: caption -> how many facts of that clip's plan it states."""
    from fusionaudio.schema import Cue
    from fusionaudio.stages.fusion.plan import build_plan
    from fusionaudio.stages.fusion.verify import stated_facts

    counters: dict[str, Any] = {}
    for line in (run_dir / "results.jsonl").open():
        record = json.loads(line)
        if not record.get("cues") or record.get("media") is None:
            continue
        cues = {name: Cue.from_dict(c) for name, c in record["cues"].items()}
        media = record["media"]
        duration = float(media["window_end_s"]) - float(media["window_start_s"])
        plan = build_plan(cues, duration, silent=bool(media.get("silent")))
        counters[record["clip_id"]] = lambda text, p=plan: len(stated_facts(text, p))
    return counters


if __name__ == "__main__":
    main()
