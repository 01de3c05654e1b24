"""The report as one self-contained HTML file: inline SVG plots, inline styles, audio
embedded as data URIs (or linked by relative path with a media-fragment window), and no
network request of any kind.

The page checks itself when it loads: it counts images that failed to render and script
errors into ``data-broken-images`` / ``data-errors`` on ``<body>``, which the browser test
reads.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

from fusionaudio.dataset.window_audio import record_window, window_flac
from fusionaudio.media.errors import MediaError
from fusionaudio.report.stats import GalleryItem

GALLERY_SAMPLE_RATE = 16_000  # embedded audio: mono-enough, small, and what the experts heard


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue().encode()).decode()
    return f'<img class="plot" alt="plot" src="data:image/svg+xml;base64,{data}">'


def _bar(title: str, labels: list[str], values: list[float], xlabel: str = "") -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    ax.bar(range(len(values)), values, color="#3b6ea5")
    tilt = len(labels) > 6 or max((len(x) for x in labels), default=0) > 8
    ax.set_xticks(
        range(len(labels)), labels, rotation=30 if tilt else 0, ha="right" if tilt else "center"
    )
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _histogram(title: str, values: list[float], threshold: float | None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    if values:
        ax.hist(values, bins=30, color="#3b6ea5")
    if threshold is not None:
        ax.axvline(threshold, color="#c0392b", linestyle="--", label=f"threshold {threshold:g}")
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _table(rows: list[tuple[str, Any]], head: tuple[str, str] = ("", "")) -> str:
    body = "".join(
        f"<tr><td>{html.escape(str(a))}</td><td>{html.escape(str(b))}</td></tr>" for a, b in rows
    )
    header = f"<tr><th>{html.escape(head[0])}</th><th>{html.escape(head[1])}</th></tr>"
    return f"<table>{header if any(head) else ''}{body}</table>"


def _audio(record: dict[str, Any], out: Path, embed: bool) -> str:
    start, end = record_window(record)
    if not embed:
        relative = os.path.relpath(record["source"], out.parent)
        return (
            f'<audio controls preload="none" '
            f'src="{html.escape(Path(relative).as_posix())}#t={start:g},{end:g}"></audio>'
        )
    try:
        audio = window_flac(record, GALLERY_SAMPLE_RATE)
    except (MediaError, OSError, ValueError) as exc:
        return f'<p class="note">audio unavailable: {html.escape(str(exc))}</p>'
    data = base64.b64encode(audio.flac).decode()
    return f'<audio controls preload="none" src="data:audio/flac;base64,{data}"></audio>'


def _card(item: GalleryItem, out: Path, embed: bool) -> str:
    record = item.record
    caption = record.get("caption") or {}
    ambiguities = "".join(f"<li>{html.escape(a)}</li>" for a in caption.get("ambiguities", []))
    qa = "".join(
        f"<li><b>{html.escape(p['question'])}</b> {html.escape(p['answer'])}</li>"
        for p in record.get("qa") or []
    )
    cues = "".join(
        f"<details><summary>{html.escape(name)}</summary><pre>"
        f"{html.escape(json.dumps(cue.get('output'), indent=1, ensure_ascii=False)[:4000])}"
        "</pre></details>"
        for name, cue in sorted((record.get("cues") or {}).items())
    )
    score = "" if item.score is None else f" · score {item.score:.3f}"
    realized = (caption.get("provenance") or {}).get("realized_by") or "llm"
    return (
        '<div class="card">'
        f"<h3>{html.escape(item.clip_id)}</h3>"
        f'<p class="meta">{html.escape(str(record.get("status")))}{score} · written by {html.escape(realized)}</p>'
        f"{_audio(record, out, embed)}"
        f'<p class="caption">{html.escape(str(caption.get("text", "")))}</p>'
        + (f"<p>Ambiguities:</p><ul>{ambiguities}</ul>" if ambiguities else "")
        + (f"<p>Questions and answers:</p><ul>{qa}</ul>" if qa else "")
        + f"<details><summary>Expert cues</summary>{cues}</details></div>"
    )


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(500px,1fr));gap:1rem}
.plot{max-width:100%} table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;font-size:.9rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}
.caption{font-size:1.05rem} .meta,.note{color:#666;font-size:.85rem}
pre{white-space:pre-wrap;font-size:.75rem;max-height:20rem;overflow:auto}
"""

SELF_CHECK = """
window.__errors = [];
window.addEventListener('error', e => { window.__errors.push(String(e.message)); });
const consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(' ')); consoleError(...args); };
window.addEventListener('load', () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0));
  document.body.dataset.images = String(document.images.length);
  document.body.dataset.brokenImages = String(broken.length);
  document.body.dataset.errors = String(window.__errors.length);
  document.body.dataset.checked = 'yes';
});
"""


def render(
    summary: dict[str, Any],
    run: dict[str, Any],
    scores: list[float],
    threshold: float | None,
    random_items: list[GalleryItem],
    lowest_items: list[GalleryItem],
    out: Path,
    embed_audio: bool,
) -> str:
    statuses = summary["statuses"]
    stages = run.get("stages") or {}
    plots = [
        _bar("Clips by status", list(statuses), list(statuses.values())),
        _bar(
            "Caption length (words)",
            list(summary["caption_length_words"]),
            list(summary["caption_length_words"].values()),
        ),
        _histogram("Caption score distribution", scores, threshold),
        _bar(
            "Modality usage (captions stating a fact from ...)",
            list(summary["modality_usage"]),
            list(summary["modality_usage"].values()),
        ),
    ]
    for name, counts in summary["mentions_per_caption"].items():
        plots.append(
            _bar(f"{name.capitalize()} mentioned per caption", list(counts), list(counts.values()))
        )
    if stages:
        plots.append(
            _bar(
                "Busy seconds per stage",
                list(stages),
                [float(s.get("busy_s", 0.0)) for s in stages.values()],
            )
        )
    reasons = "".join(
        f"<h3>{html.escape(state)}</h3>{_table(list(counts.items()), ('reason', 'clips'))}"
        for state, counts in summary["reasons"].items()
        if counts
    )
    diversity = summary["diversity"]
    phrases = _table(
        [(p["phrase"], p["count_at_least"]) for p in diversity["most_repeated_phrases"]],
        ("phrase", "times (at least)"),
    )
    near = _table(
        [(f"{p['a']}  ↔  {p['b']}", p["similarity"]) for p in diversity["near_duplicate_pairs"]],
        ("clips", "similarity"),
    )
    stage_rows = [
        (
            name,
            f"computed {s.get('computed', 0)}, cached {s.get('cached', 0)}, "
            f"errors {s.get('errors', 0)}, busy {float(s.get('busy_s', 0.0)):.1f} s"
            + (
                f", {s.get('computed', 0) / float(s['busy_s']):.2f} clips per busy second"
                if float(s.get("busy_s") or 0.0) > 0 and s.get("computed")
                else ""
            ),
        )
        for name, s in stages.items()
    ]
    counting = _table(list(summary["counting"].items()), ("figure", "how it is counted"))
    random_cards = "".join(_card(i, out, embed_audio) for i in random_items)
    lowest_cards = "".join(_card(i, out, embed_audio) for i in lowest_items)
    title = f"fusionaudio report: {html.escape(str(run.get('input', out.parent.name)))}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style><script>{SELF_CHECK}</script></head>
<body>
<h1>{title}</h1>
<p class="meta">{summary["records"]} clips · {summary["captions"]} captions ·
pipeline {html.escape(str(run.get("pipeline_hash", "?")))} · wall
{float(run.get("wall_s", 0.0)):.0f} s · {float(run.get("clips_per_s", 0.0)):.3f} clips/s</p>
<h2>Statistics</h2>
<div class="grid">{"".join(plots)}</div>
<h2>Why clips were not captioned</h2>{reasons or "<p>Every clip was captioned.</p>"}
<h2>Caption diversity</h2>
{_table([("distinct 1-grams", diversity["distinct_1"]), ("distinct 2-grams", diversity["distinct_2"]), ("near-duplicate pairs shown", len(diversity["near_duplicate_pairs"]))])}
<h3>Most repeated phrases</h3>{phrases}
<h3>Near-duplicate captions of different clips</h3>{near}
<h2>Stages</h2>{_table(stage_rows, ("stage", "clips and time"))}
<h3>Warnings by kind</h3>{_table(list(summary["warnings"].items()), ("warning", "clips"))}
<h2>How figures are counted</h2>{counting}
<h2>Gallery: random clips</h2><div class="grid">{random_cards}</div>
<h2>Gallery: lowest-scored clips</h2><div class="grid">{lowest_cards}</div>
</body></html>
"""
