"""A static page for human raters: open ``index.html`` from the file system (no server), play
each sampled clip, read its caption, give the paper's two scores, export a CSV.

Scores: detail 1-3 (1 vague, 3 fine-grained) and hallucination 1-5 (1 mostly invented,
5 nothing invented; 1-2 is a notable hallucination, as ``calibrate`` reads it). Progress
is kept in the browser's local storage under the page's id, so a rater can close the tab
and come back. The exported CSV (``clip_id,rater,detail,score,comment``) is what
``fusionaudio calibrate --ratings`` and ``fusionaudio agreement`` read.

Clips are sampled from the captioned ones whatever their status (``ok`` and
``filtered``): calibrating the filter needs ratings on both sides of its threshold.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import random
from pathlib import Path
from typing import Any

from fusionaudio.dataset.export import iter_results
from fusionaudio.dataset.window_audio import record_window, window_flac
from fusionaudio.media.errors import MediaError
from fusionaudio.store.atomic import atomic_write_text

PAGE_SAMPLE_RATE = 16_000


def sample_records(run_dir: Path, n: int, seed: int) -> list[dict[str, Any]]:
    """A seeded reservoir sample of ``n`` captioned records, in the run's order."""
    rng = random.Random(seed)
    chosen: list[tuple[int, dict[str, Any]]] = []
    seen = 0
    for record in iter_results(run_dir, None):
        if not (record.get("caption") or {}).get("text"):
            continue
        if len(chosen) < n:
            chosen.append((seen, record))
        else:
            j = rng.randrange(seen + 1)
            if j < n:
                chosen[j] = (seen, record)
        seen += 1
    return [record for _, record in sorted(chosen, key=lambda x: x[0])]


def _audio_src(record: dict[str, Any], out_dir: Path, embed: bool) -> str | None:
    start, end = record_window(record)
    if not embed:
        relative = Path(os.path.relpath(record["source"], out_dir)).as_posix()
        return f"{relative}#t={start:g},{end:g}"
    try:
        flac = window_flac(record, PAGE_SAMPLE_RATE).flac
    except (MediaError, OSError, ValueError):
        return None
    return "data:audio/flac;base64," + base64.b64encode(flac).decode()


def build_rating_page(
    run_dir: Path, out_dir: Path, sample: int = 100, seed: int = 0, embed_audio: bool = True
) -> Path:
    records = sample_records(run_dir, sample, seed)
    items = [
        {
            "clip_id": r["clip_id"],
            "caption": r["caption"]["text"],
            "audio": _audio_src(r, out_dir, embed_audio),
        }
        for r in records
    ]
    page_id = hashlib.blake2b(
        json.dumps([str(run_dir.resolve()), [i["clip_id"] for i in items]]).encode(),
        digest_size=8,
    ).hexdigest()
    data = json.dumps({"page_id": page_id, "items": items}, ensure_ascii=False)
    page = PAGE.replace("__DATA__", data.replace("</", "<\\/")).replace(
        "__TITLE__", html.escape(f"Rate captions: {run_dir.name}")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    atomic_write_text(index, page)
    return index


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:system-ui,sans-serif;max-width:900px;margin:1.5rem auto;padding:0 1rem;color:#222}
.item{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0}
.item.done{border-color:#2e8b57} .caption{font-size:1.05rem}
fieldset{border:none;padding:0;margin:.3rem 0} legend{font-weight:600;font-size:.9rem}
label{margin-right:.8rem} textarea{width:100%;height:2.5rem}
#bar{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid #ddd}
.help{color:#555;font-size:.85rem}
</style></head>
<body>
<h1>__TITLE__</h1>
<p class="help">Listen to each clip, read its caption, and score it.
<b>Detail</b>: 1 vague, 2 some detail, 3 fine-grained.
<b>Hallucination</b>: 1 mostly invented, 2 a notable invented sound or claim, 3 minor
errors, 4 nearly right, 5 nothing invented. Your answers stay in this browser until you
export them.</p>
<div id="bar"><label>Your name <input id="rater" autocomplete="off"></label>
<span id="progress"></span>
<button id="export">Export CSV</button></div>
<div id="items"></div>
<script id="data" type="application/json">__DATA__</script>
<script>
const DATA = JSON.parse(document.getElementById('data').textContent);
const KEY = 'fusionaudio-ratings:' + DATA.page_id;
const state = JSON.parse(localStorage.getItem(KEY) || '{"rater":"","ratings":{}}');
function save() { localStorage.setItem(KEY, JSON.stringify(state)); progress(); }
function progress() {
  const done = DATA.items.filter(i => (state.ratings[i.clip_id] || {}).score).length;
  document.getElementById('progress').textContent = `rated ${done} of ${DATA.items.length}`;
  for (const item of DATA.items) {
    const card = document.getElementById('item-' + item.clip_id);
    if (card) card.classList.toggle('done', !!(state.ratings[item.clip_id] || {}).score);
  }
}
function scale(item, name, top) {
  const set = document.createElement('fieldset');
  const legend = document.createElement('legend');
  legend.textContent = name === 'detail' ? 'Detail (1-3)' : 'Hallucination (1-5)';
  set.appendChild(legend);
  for (let v = 1; v <= top; v++) {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'radio'; input.name = name + '-' + item.clip_id; input.value = v;
    input.dataset.clip = item.clip_id; input.dataset.scale = name;
    input.checked = (state.ratings[item.clip_id] || {})[name] === v;
    input.addEventListener('change', () => {
      (state.ratings[item.clip_id] ||= {})[name] = v; save();
    });
    label.appendChild(input); label.append(' ' + v); set.appendChild(label);
  }
  return set;
}
const list = document.getElementById('items');
DATA.items.forEach((item, n) => {
  const card = document.createElement('div');
  card.className = 'item'; card.id = 'item-' + item.clip_id;
  const head = document.createElement('p');
  head.textContent = `${n + 1}. ${item.clip_id}`;
  card.appendChild(head);
  if (item.audio) {
    const audio = document.createElement('audio');
    audio.controls = true; audio.preload = 'none'; audio.src = item.audio;
    card.appendChild(audio);
  } else {
    const note = document.createElement('p'); note.className = 'help';
    note.textContent = 'audio unavailable'; card.appendChild(note);
  }
  const caption = document.createElement('p');
  caption.className = 'caption'; caption.textContent = item.caption;
  card.appendChild(caption);
  card.appendChild(scale(item, 'detail', 3));
  card.appendChild(scale(item, 'score', 5));
  const comment = document.createElement('textarea');
  comment.placeholder = 'comment (optional)'; comment.dataset.clip = item.clip_id;
  comment.value = (state.ratings[item.clip_id] || {}).comment || '';
  comment.addEventListener('input', () => {
    (state.ratings[item.clip_id] ||= {}).comment = comment.value; save();
  });
  card.appendChild(comment);
  list.appendChild(card);
});
const rater = document.getElementById('rater');
rater.value = state.rater;
rater.addEventListener('input', () => { state.rater = rater.value.trim(); save(); });
function csvCell(text) {
  const s = String(text ?? '');
  return /[",\\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}
function toCsv() {
  const rows = [['clip_id', 'rater', 'detail', 'score', 'comment']];
  for (const item of DATA.items) {
    const r = state.ratings[item.clip_id];
    if (!r || !r.score) continue;
    rows.push([item.clip_id, state.rater, r.detail || '', r.score, r.comment || '']);
  }
  return rows.map(row => row.map(csvCell).join(',')).join('\\n') + '\\n';
}
document.getElementById('export').addEventListener('click', () => {
  const blob = new Blob([toCsv()], {type: 'text/csv'});
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = 'ratings-' + (state.rater || 'rater').replace(/[^A-Za-z0-9_-]+/g, '_') + '.csv';
  document.body.appendChild(link); link.click(); link.remove();
});
progress();
</script>
</body></html>
"""
