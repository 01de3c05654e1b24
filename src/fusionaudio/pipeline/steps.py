"""The engine-facing steps: load a clip's media, then one step per expert stage.

Each step turns failures into data on the task (``task.error``) instead of raising, and
serves results from the content-addressed cache, so a resumed or re-configured run
recomputes only what changed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from fusionaudio.config import MediaConfig
from fusionaudio.media.audio import loudness
from fusionaudio.media.deadline import Deadline
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.media.errors import MediaError
from fusionaudio.media.frames import frame_times, sample_frames
from fusionaudio.media.hashing import hash_file
from fusionaudio.media.probe import probe
from fusionaudio.pipeline.graph import cue_needs, media_view_needs, view_needs
from fusionaudio.pipeline.inputs import outside_root
from fusionaudio.pipeline.task import ClipTask, SourceStat
from fusionaudio.schema import Clip, Cue, MediaSummary
from fusionaudio.stages.base import (
    AUDIO_16K_MONO,
    AUDIO_44K_STEREO,
    AUDIO_48K_MONO,
    VIDEO_FRAMES,
    Stage,
    StageInput,
    StageOutput,
    config_hash,
)
from fusionaudio.store.stage_cache import StageCache

MEDIA_CACHE = "_media"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def stage_key(load_key: str, stage: Stage, upstream: dict[str, str], clip: Clip) -> str:
    return config_hash(
        {
            "load": load_key,
            "stage": stage.name,
            "clip": stage.clip_key(clip),
            "config": stage.config_hash(),
            "upstream": upstream,
        }
    )


class LoadStep:
    """Stat, hash and probe the file; serve cached cues; decode only what is still needed."""

    name = "load"
    batch_size = 1

    def __init__(
        self, stages: list[Stage], media: MediaConfig, cache: StageCache, workers: int
    ) -> None:
        self.stages = stages
        self.providers = {view: s.name for s in stages for view in s.provides_views}
        self.media = media
        self.cache = cache
        self.workers = workers

    def setup(self) -> None:
        pass

    def teardown(self) -> None:
        pass

    def process(self, batch: list[ClipTask]) -> list[ClipTask]:
        for task in batch:
            started = time.perf_counter()
            try:
                self._load(task)
            except MediaError as exc:
                task.error = str(exc)
            except Exception as exc:
                task.error = f"unexpected error while loading media: {_describe(exc)}"
            finally:
                task.views = {} if task.error else task.views
                task.timings[self.name] = round(time.perf_counter() - started, 6)
        self.cache.commit()
        return batch

    def _window(self, task: ClipTask) -> Window:
        clip = task.clip
        if clip.end_s is not None:
            return Window(clip.start_s, clip.end_s)
        return Window(clip.start_s, clip.start_s + self.media.max_duration_s)

    def _load(self, task: ClipTask) -> None:
        path = Path(task.clip.source)
        refused = outside_root(task.clip)
        if refused is not None:
            raise MediaError(refused)
        try:
            st = path.stat()
        except FileNotFoundError as exc:
            raise MediaError(f"file not found: {path}") from exc
        except OSError as exc:
            raise MediaError(f"cannot access file: {exc.strerror or exc}") from exc
        if not path.is_file():
            raise MediaError("not a regular file")

        task.stat = SourceStat(size=st.st_size, mtime_ns=st.st_mtime_ns)
        if st.st_size == 0:
            raise MediaError("empty file (0 bytes)")
        if st.st_size > self.media.max_file_mb * 1024 * 1024:
            raise MediaError(
                f"file too large: {st.st_size / 2**20:.0f} MiB (max_file_mb is "
                f"{self.media.max_file_mb:g})"
            )
        window = self._window(task)
        media_hash = hash_file(path, Deadline(self.media.decode_timeout_s, what="hashing"))
        load_key = config_hash(
            {"media_hash": media_hash, "start_s": window.start_s, "end_s": window.end_s}
        )
        for stage in self.stages:
            upstream = {
                need: task.stage_keys[self.providers.get(need, need)]
                for need in (*stage.needs, *stage.wants)
                if self.providers.get(need, need) in task.stage_keys
            }
            task.stage_keys[stage.name] = stage_key(load_key, stage, upstream, task.clip)
        hits = self.cache.get_many(
            [*task.stage_keys.items(), (MEDIA_CACHE, load_key)]
        )  # one lookup per cache file for the whole clip
        for stage in self.stages:
            hit = hits.get((stage.name, task.stage_keys[stage.name]))
            if hit is not None:
                task.cues[stage.name] = Cue.from_dict(hit)
                task.cached.add(stage.name)
        cached_media = hits.get((MEDIA_CACHE, load_key))
        task.must_run = stages_to_run(self.stages, set(task.cues))
        needed_views = {
            view
            for stage in self.stages
            if stage.name in task.must_run
            for view in media_view_needs(stage)
        }
        if cached_media is not None and not needed_views:
            task.media = MediaSummary.from_dict(cached_media)
            return
        self._decode(task, path, window, media_hash, needed_views)
        if task.media is not None and cached_media is None:
            self.cache.put(MEDIA_CACHE, load_key, task.media.to_dict())

    def _decode(
        self, task: ClipTask, path: Path, window: Window, media_hash: str, views: set[str]
    ) -> None:
        info = probe(path)
        if not info.has_audio:
            raise MediaError(
                "the file has no audio stream" + (" (video only)" if info.has_video else "")
            )
        decoded = decode_audio(path, window, self.media.decode_timeout_s)
        audio = decoded.audio
        duration = audio.duration_s
        if duration < self.media.min_duration_s:
            raise MediaError(
                f"too short: {duration:.3f} s of audio (min_duration_s is {self.media.min_duration_s:g})"
            )
        level = loudness(audio)
        truncated = task.clip.end_s is None and not decoded.reached_end
        task.media = MediaSummary(
            media_hash=media_hash,
            container=info.container,
            source_duration_s=None if info.duration_s is None else round(info.duration_s, 3),
            source_sample_rate=info.sample_rate or audio.sample_rate,
            source_channels=info.channels or audio.channels,
            has_video=info.has_video,
            window_start_s=round(window.start_s, 3),
            window_end_s=round(window.start_s + duration, 3),
            truncated=truncated,
            rms_dbfs=round(level.rms_dbfs, 2),
            peak_dbfs=round(level.peak_dbfs, 2),
            silent=level.silent,
            decoder=decoded.decoder,
        )
        expected = None if info.duration_s is None else min(info.duration_s, window.end_s or 1e12)
        if expected is not None and expected - window.start_s - duration > 0.5:
            task.warnings.append(
                f"damaged: decoded {duration:.1f} s where the header declares "
                f"{expected - window.start_s:.1f} s; the file may be truncated"
            )
        if truncated:
            task.warnings.append(
                f"truncated: analysed {window.start_s:g}-{window.start_s + duration:g} s of a "
                f"{info.duration_s or 0:.1f} s file (media.max_duration_s)"
            )
        if AUDIO_16K_MONO in views:
            task.views[AUDIO_16K_MONO] = audio.mono().resample(16_000)
        if AUDIO_44K_STEREO in views:
            task.views[AUDIO_44K_STEREO] = audio.channel_layout(2).resample(44_100)
        if AUDIO_48K_MONO in views:
            task.views[AUDIO_48K_MONO] = audio.mono().resample(48_000)
        if VIDEO_FRAMES in views and info.has_video:
            times = frame_times(
                window.start_s,
                window.start_s + duration,
                self.media.frame_rate_hz,
                self.media.max_frames,
            )
            task.views[VIDEO_FRAMES] = sample_frames(
                path, times, self.media.frame_max_side, self.media.decode_timeout_s
            )


class StageStep:
    """Runs one expert stage on the clips that still need its cue, and caches the result."""

    def __init__(self, stage: Stage, cache: StageCache, release_views: frozenset[str]) -> None:
        self.stage = stage
        self.name = stage.name
        self.batch_size = stage.batch_size
        self.workers = stage.workers
        self.resources = stage.resources
        self.cache = cache
        self.release_views = release_views

    def setup(self) -> None:
        self.stage.setup()

    def teardown(self) -> None:
        self.stage.teardown()

    def _runnable(self, task: ClipTask) -> bool:
        if task.error is not None or self.name not in task.must_run:
            return False
        views_ok = all(v in task.views for v in view_needs(self.stage))
        cues_ok = all(c in task.cues for c in cue_needs(self.stage))
        return views_ok and cues_ok

    def _input(self, task: ClipTask) -> StageInput:
        cues = {c: task.cues[c] for c in cue_needs(self.stage)}
        cues.update({c: task.cues[c] for c in self.stage.wants if c in task.cues})
        return StageInput(
            clip=task.clip,
            views={v: task.views[v] for v in view_needs(self.stage)},
            cues=cues,
            media=task.media,
        )

    def process(self, batch: list[ClipTask]) -> list[ClipTask]:
        todo = [task for task in batch if self._runnable(task)]
        if todo:
            self._run(todo)
        for task in batch:
            for view in self.release_views:
                task.views.pop(view, None)
        self.cache.commit()  # the batch's cues are durable before the batch moves on
        return batch

    def _run(self, todo: Sequence[ClipTask]) -> None:
        started = time.perf_counter()
        try:
            outs = self.stage([self._input(t) for t in todo])
            if len(outs) != len(todo):
                raise RuntimeError(f"returned {len(outs)} results for {len(todo)} clips")
        except Exception:
            # Retry alone, so one bad clip fails only itself.
            for task in todo:
                self._run_one(task)
            return
        elapsed = (time.perf_counter() - started) / len(todo)
        for task, out in zip(todo, outs, strict=True):
            self._store(task, out, elapsed)

    def _run_one(self, task: ClipTask) -> None:
        started = time.perf_counter()
        try:
            (out,) = self.stage([self._input(task)])
        except Exception as exc:
            task.error = f"{self.name} failed: {_describe(exc)}"
            task.timings[self.name] = round(time.perf_counter() - started, 6)
            return
        self._store(task, out, time.perf_counter() - started)

    def _store(self, task: ClipTask, out: Cue | StageOutput, elapsed: float) -> None:
        if isinstance(out, StageOutput):
            task.views.update(out.views)
            out = out.cue
        if self.name in task.cached:
            return  # ran again only to provide views; the cached cue stands
        self.cache.put(self.name, task.stage_keys[self.name], out.to_dict())
        task.cues[self.name] = out
        task.timings[self.name] = round(elapsed, 6)


def stages_to_run(stages: list[Stage], cached: set[str]) -> set[str]:
    """Stages without a cached cue, plus the providers of views those stages need."""
    must = {s.name for s in stages if s.name not in cached}
    for index in range(len(stages) - 1, -1, -1):
        stage = stages[index]
        if stage.name not in must:
            continue
        for view in view_needs(stage):
            for provider in stages[:index]:
                if view in provider.provides_views:
                    must.add(provider.name)
    return must


def release_plan(stages: list[Stage]) -> list[frozenset[str]]:
    """For each stage, the views no later stage needs: dropped right after it runs."""
    plan = []
    for index, _stage in enumerate(stages):
        later = {v for s in stages[index + 1 :] for v in view_needs(s)}
        used_so_far = {v for s in stages[: index + 1] for v in view_needs(s)}
        plan.append(frozenset(used_so_far - later))
    return plan
