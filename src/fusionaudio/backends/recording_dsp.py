"""How a sound was recorded: bandwidth, noise floor, clipping, reverberation, stereo width
and level dynamics. Plain DSP (numpy) on the full-band view, no model.

Every number has its unit in its name; every threshold is a named constant with the
reason for its value. The measures are cues for a caption ("a muffled telephone
recording", "a dry, close recording", "in a large reverberant hall"), not acoustics
laboratory measurements: the reverberation estimate in particular is hedged (see
``reverb``). See ``docs/cues/recording_music.md`` for measured results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# --- bandwidth -------------------------------------------------------------------------
BANDWIDTH_FRAME = 4096
"""Long-term spectrum: 4096-point frames (10.8 Hz bins at 44.1 kHz), half overlap."""
BANDWIDTH_ENERGY_FRACTION = 0.99
"""``energy_99_hz``: the frequency below which 99 % of the long-term energy lies. Reported,
but not used for the band: natural sounds put most of their energy low (the 99 % point of
the 22 kHz read-speech clips is 1.1-6.7 kHz, of full-band 32 kHz effects 0.6-14 kHz), so
it cannot tell a 4 kHz telephone channel from a full-band microphone."""
BANDWIDTH_EDGE_DROP_DB = 60.0
"""``bandwidth_hz`` is the highest frequency whose smoothed long-term level is within
60 dB of the spectral peak. Robust to noise: hiss, dither and codec noise more than 60 dB
under the peak do not widen the band, and a resampled 8 kHz source has nothing at all
above 4 kHz (soxr's stop band is > 100 dB down)."""
BANDWIDTH_SMOOTH_HZ = 200.0
"""Spectral smoothing before the edge search, so single tonal lines do not decide it."""
CLIFF_DB = 30.0
CLIFF_SEARCH_HZ = (300.0, 1500.0)
"""A hard band limit (resampling, a telephone channel, a codec low-pass) drops the level by
more than 30 dB within 300-1500 Hz above the edge (measured: 35-90 dB on every 8 and
11 kHz source); a natural roll-off (an owl hoot, a flute) drops by less than 15 dB. Only a
cliff makes a confident band limit, and only a cliff can make ``telephone``."""
NATURAL_ROLLOFF_CONFIDENCE = 0.4
"""Confidence of ``band-limited`` without a cliff: the content may simply have no highs."""
TELEPHONE_MAX_HZ = 4200.0
"""Narrow-band telephony (G.711, 8 kHz sampling) passes ~300-3400 Hz, and an 8 kHz file
carries at most 4 kHz: an edge below 4.2 kHz is a telephone-like channel."""
TELEPHONE_LOW_HZ = 250.0
"""``low_band_share`` (energy below 250 Hz) is reported but does not decide ``telephone``:
a line's 300 Hz high-pass is not in the files, the 8 kHz Asterisk telephony prompts keep
25-80 % of their energy below 250 Hz. The hard 4 kHz limit is the telephone trait."""
BAND_LIMITED_MAX_HZ = 7000.0
"""Below ~7 kHz (the edge of 16 kHz wide-band speech codecs, and of 11 kHz game sound
effects at 5.5 kHz) a recording sounds muffled: ``band-limited``. At and above, ``full``."""

# --- noise floor and SNR ----------------------------------------------------------------
LEVEL_FRAME_S = 0.02
"""Frame energy over 20 ms frames: shorter than a syllable, longer than a pitch period."""
NOISE_PERCENTILE = 10.0
"""The noise floor is the 10th percentile of frame levels: the quiet gaps between
events, robust to a few frames of digital silence or clicks."""
SIGNAL_PERCENTILE = 95.0
"""The signal level is the 95th percentile, robust to a single loud transient."""
DIGITAL_SILENCE_DBFS = -120.0
"""Frames at or below this are digital silence (padding, gated silence): they are not the
recording's noise floor and are left out; a clip of only such frames has floor -120."""

# --- clipping ---------------------------------------------------------------------------
FULL_SCALE = 0.995
"""A sample at |x| >= 0.995 (-0.04 dBFS) is at full scale."""
CLIP_MIN_RUN_SAMPLES = 3
"""Clipping flattens wave tops: three or more consecutive full-scale samples. A clean
signal touching full scale at a peak gives runs of one or two."""
CLIP_MIN_FRACTION = 1e-4
CLIP_MIN_RUNS = 3
"""Clipping is reported from 3 separate flat tops and 0.01 % of samples on: one flat top is
an isolated overload that is rarely audible."""

# --- reverberation ----------------------------------------------------------------------
ENVELOPE_HOP_S = 0.005
ENVELOPE_WINDOW_S = 0.01
"""Level envelope on 10 ms windows every 5 ms: a dry offset (decay time 0.1 s) still spans
several frames over a 20 dB drop."""
DECAY_START_DB = 5.0
DECAY_END_DB = 25.0
"""Each decay is timed from 5 dB to 25 dB below its peak (a "T20"), extrapolated to 60 dB,
as in ISO 3382; a drop of 15 dB ("T10") is used when the noise floor is too close."""
DECAY_SHORT_END_DB = 15.0
DECAY_FLOOR_MARGIN_DB = 5.0
"""The decay must end 5 dB above the noise floor, or noise decides the slope."""
DECAY_MAX_RISE_DB = 2.0
"""A rise of more than 2 dB inside a decay is a new event: that decay is not clear."""
DECAY_MIN_PEAK_RISE_DB = 6.0
"""A decay starts at a local peak at least 6 dB above the level 50 ms before (an onset)."""
DECAY_FASTEST_PERCENTILE = 25.0
"""Reverberation bounds how fast sound can die away; a source's own ring (a bell, a held
note) only makes it slower. So the room is read from the fastest quarter of the decays."""
DRY_MAX_S = 0.3
"""Decay time (to -60 dB) below 0.3 s: dry (close microphone, studio, outdoors)."""
ROOM_MAX_S = 1.2
"""0.3-1.2 s: an ordinary room; above 1.2 s: a large hall, church or cave."""
MIN_DECAYS = 1
REVERB_CONFIDENCE_MAX = 0.6
"""The decay of a recording mixes the room with the source's own ring-out and any
artificial reverb; the cue is never stated as certain."""

# --- stereo -----------------------------------------------------------------------------
MONO_MAX_WIDTH = 1e-3
"""Side energy below 0.1 % of the total (-30 dB): channels practically identical."""
NARROW_MAX_WIDTH = 0.1
"""Side energy below 10 % of the total: mostly centred, some spatial cues (panned
instruments, a little room); from 10 % on, ``wide`` (spaced microphones, ambience)."""

# --- dynamics ---------------------------------------------------------------------------
DYNAMICS_BLOCK_S = 0.1
STEADY_MAX_SPREAD_DB = 6.0
"""The 10th-90th percentile spread of 100 ms block levels below 6 dB: a steady level
(about the smallest level change a listener calls "louder")."""
TREND_MIN_DB = 6.0
TREND_MIN_R2 = 0.6
"""Rising or falling: a straight-line fit of the level explains 60 % of its variance and
changes it by at least 6 dB over the clip."""
HUMP_MIN_DB = 6.0
"""Fading in and out: the middle third is 6 dB louder than both outer thirds."""


def _mono(samples: np.ndarray) -> np.ndarray:
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    mono: np.ndarray = samples.mean(axis=0)
    return mono


def _frame_db(signal: np.ndarray, window: int, hop: int) -> np.ndarray:
    if len(signal) < window:
        signal = np.pad(signal, (0, window - len(signal)))
    count = 1 + (len(signal) - window) // hop
    power = np.square(signal)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    starts = hop * np.arange(count)
    energy = (csum[starts + window] - csum[starts]) / window
    db: np.ndarray = 10.0 * np.log10(np.maximum(energy, 1e-14))
    return db


def _clip01(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def bandwidth(signal: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """Upper band edge of the long-term spectrum, and a band class with a confidence."""
    nyquist = sample_rate / 2.0
    frame = BANDWIDTH_FRAME
    if len(signal) < frame:
        signal = np.pad(signal, (0, frame - len(signal)))
    hop = frame // 2
    count = 1 + (len(signal) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    power = np.square(np.abs(np.fft.rfft(signal[idx] * np.hanning(frame), axis=1)))
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    live = power.sum(axis=1) > 1e-12
    if not np.any(live):
        return {"bandwidth_hz": None, "band": None, "energy_99_hz": None, "confidence": 0.0}
    spectrum = power[live].mean(axis=0)
    total = float(spectrum.sum())
    cumulative = np.cumsum(spectrum) / total
    index = int(np.searchsorted(cumulative, BANDWIDTH_ENERGY_FRACTION))
    energy_edge = float(freqs[min(len(freqs) - 1, index)])
    width = max(1, round(BANDWIDTH_SMOOTH_HZ / float(freqs[1] - freqs[0])))
    smooth = np.convolve(spectrum, np.ones(width) / width, mode="same")
    smooth_db = 10 * np.log10(np.maximum(smooth, 1e-20))
    peak_db = float(np.max(smooth_db))
    carrying = np.nonzero(smooth_db >= peak_db - BANDWIDTH_EDGE_DROP_DB)[0]
    edge = float(freqs[carrying[-1]])
    edge_db = float(smooth_db[carrying[-1]])
    above = smooth_db[(freqs > edge + CLIFF_SEARCH_HZ[0]) & (freqs < edge + CLIFF_SEARCH_HZ[1])]
    cliff_db = edge_db - float(np.max(above)) if len(above) else 0.0
    hard_limit = cliff_db >= CLIFF_DB
    low_share = float(spectrum[freqs < TELEPHONE_LOW_HZ].sum() / total)
    if edge < TELEPHONE_MAX_HZ and hard_limit:
        band = "telephone"
    elif edge < BAND_LIMITED_MAX_HZ:
        band = "band-limited"
    else:
        band = "full"
    # Confidence: distance (in octaves) of the edge from the nearest class boundary; a band
    # limit without a cliff may be content without highs rather than the channel.
    octaves = min(abs(np.log2(max(edge, 1.0) / b)) for b in (TELEPHONE_MAX_HZ, BAND_LIMITED_MAX_HZ))
    confidence = _clip01(0.6 + octaves)
    if band != "full" and not hard_limit:
        confidence = min(confidence, NATURAL_ROLLOFF_CONFIDENCE)
    if band == "full" and edge >= nyquist * 0.95:
        # The view itself ends here (the 16 kHz fallback view): wider than we can see.
        confidence *= 0.5
    return {
        "bandwidth_hz": round(edge, -1),
        "band": band,
        "energy_99_hz": round(energy_edge, -1),
        "cliff_db": round(cliff_db, 1),
        "low_band_share": round(low_share, 3),
        "confidence": round(confidence, 2),
    }


def noise_and_snr(signal: np.ndarray, sample_rate: int) -> dict[str, Any]:
    window = max(1, round(LEVEL_FRAME_S * sample_rate))
    db = _frame_db(signal, window, window)
    live = db[db > DIGITAL_SILENCE_DBFS]
    if len(live) == 0:
        return {"noise_floor_dbfs": DIGITAL_SILENCE_DBFS, "snr_db": 0.0, "confidence": 0.0}
    floor = float(np.percentile(live, NOISE_PERCENTILE))
    level = float(np.percentile(live, SIGNAL_PERCENTILE))
    # Few frames: percentiles of a handful of frames are shaky.
    confidence = _clip01(len(live) / 50.0)
    return {
        "noise_floor_dbfs": round(floor, 1),
        "signal_dbfs": round(level, 1),
        "snr_db": round(level - floor, 1),
        "confidence": round(confidence, 2),
    }


def clipping(samples: np.ndarray) -> dict[str, Any]:
    """Runs of consecutive full-scale samples in any channel."""
    samples = np.atleast_2d(np.asarray(samples))
    clipped = 0
    runs = 0
    for channel in samples:
        at_full = np.abs(channel) >= FULL_SCALE
        if not np.any(at_full):
            continue
        padded = np.concatenate([[False], at_full, [False]]).astype(np.int8)
        edges = np.diff(padded)
        starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        lengths = ends - starts
        long_runs = lengths >= CLIP_MIN_RUN_SAMPLES
        runs += int(np.sum(long_runs))
        clipped += int(np.sum(lengths[long_runs]))
    fraction = clipped / max(1, samples.size)
    found = runs >= CLIP_MIN_RUNS and fraction >= CLIP_MIN_FRACTION
    confidence = 0.95 if (found and runs >= 3 * CLIP_MIN_RUNS) or runs == 0 else 0.7
    return {
        "clipping": bool(found),
        "clipped_fraction": round(fraction, 5),
        "clipped_runs": runs,
        "confidence": confidence,
    }


def _decay_times(db: np.ndarray, floor_db: float, hop_s: float) -> list[tuple[float, bool]]:
    """(decay time to -60 dB in s, whether a full T20 was available) for each clear decay."""
    found: list[tuple[float, bool]] = []
    back = max(1, round(0.05 / hop_s))
    i = back
    n = len(db)
    while i < n - 2:
        is_peak = db[i] >= db[i - 1] and db[i] > db[i + 1]
        if not (is_peak and db[i] - db[i - back] >= DECAY_MIN_PEAK_RISE_DB):
            i += 1
            continue
        peak = db[i]
        room = peak - (floor_db + DECAY_FLOOR_MARGIN_DB)
        if room < DECAY_SHORT_END_DB:
            i += 1
            continue
        end_db = DECAY_END_DB if room >= DECAY_END_DB else DECAY_SHORT_END_DB
        low = peak
        start_t: int | None = None
        j = i + 1
        clear = False
        while j < n:
            if db[j] > low + DECAY_MAX_RISE_DB:
                break
            low = min(low, db[j])
            if start_t is None and db[j] <= peak - DECAY_START_DB:
                start_t = j
            if db[j] <= peak - end_db:
                clear = start_t is not None
                break
            j += 1
        if clear and start_t is not None:
            # Least-squares slope over the decay segment (dB per second).
            seg = db[start_t : j + 1]
            t = np.arange(len(seg)) * hop_s
            if len(seg) >= 2:
                slope = float(np.polyfit(t, seg, 1)[0])
            else:
                slope = -(end_db - DECAY_START_DB) / hop_s
            if slope < 0:
                found.append((60.0 / -slope, end_db == DECAY_END_DB))
            i = j
        else:
            i += 1
    return found


def reverb(signal: np.ndarray, sample_rate: int, floor_db: float) -> dict[str, Any]:
    hop = max(1, round(ENVELOPE_HOP_S * sample_rate))
    window = max(hop, round(ENVELOPE_WINDOW_S * sample_rate))
    db = _frame_db(signal, window, hop)
    # Decays may run into digital silence (gated or synthetic sounds): there the floor is
    # the silence, not the level of the few non-silent frames.
    floor_db = min(floor_db, max(DIGITAL_SILENCE_DBFS, float(np.percentile(db, NOISE_PERCENTILE))))
    decays = _decay_times(db, floor_db, hop / sample_rate)
    if len(decays) < MIN_DECAYS:
        return {"reverb": None, "decay_s": None, "decays": 0, "confidence": 0.0}
    times = np.array([d for d, _ in decays])
    decay = float(np.percentile(times, DECAY_FASTEST_PERCENTILE))
    label = "dry" if decay < DRY_MAX_S else "room" if decay < ROOM_MAX_S else "large hall"
    full_share = float(np.mean([full for _, full in decays]))
    # More decays and full T20 ranges make the estimate steadier; never certain.
    confidence = REVERB_CONFIDENCE_MAX * _clip01(len(decays) / 5.0) * (0.6 + 0.4 * full_share)
    return {
        "reverb": label,
        "decay_s": round(decay, 2),
        "decays": len(decays),
        "confidence": round(confidence, 2),
    }


def stereo(samples: np.ndarray, source_channels: int | None) -> dict[str, Any]:
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    if samples.shape[0] < 2:
        if source_channels == 1:
            return {"stereo": "mono", "stereo_width": 0.0, "confidence": 0.9}
        return {"stereo": None, "stereo_width": None, "confidence": 0.0}
    left, right = samples[0], samples[1]
    mid = float(np.sum(np.square((left + right) / 2)))
    side = float(np.sum(np.square((left - right) / 2)))
    if mid + side <= 0.0:
        return {"stereo": "mono", "stereo_width": 0.0, "confidence": 0.5}
    width = side / (mid + side)
    if width < MONO_MAX_WIDTH:
        label = "mono"
    elif width < NARROW_MAX_WIDTH:
        label = "narrow"
    else:
        label = "wide"
    identical = side == 0.0 or source_channels == 1
    margin = min(
        abs(np.log10(max(width, 1e-9) / MONO_MAX_WIDTH)),
        abs(np.log10(max(width, 1e-9) / NARROW_MAX_WIDTH)),
    )
    confidence = 0.95 if identical else _clip01(0.5 + margin)
    return {"stereo": label, "stereo_width": round(width, 4), "confidence": round(confidence, 2)}


def dynamics(signal: np.ndarray, sample_rate: int, floor_db: float) -> dict[str, Any]:
    block = max(1, round(DYNAMICS_BLOCK_S * sample_rate))
    db = np.maximum(_frame_db(signal, block, block), floor_db)
    if len(db) < 3:
        return {"dynamics": "steady", "level_range_db": 0.0, "confidence": 0.3}
    spread = float(np.percentile(db, 90) - np.percentile(db, 10))
    t = np.arange(len(db)) * DYNAMICS_BLOCK_S
    slope, intercept = np.polyfit(t, db, 1)
    fit = slope * t + intercept
    variance = float(np.var(db))
    r2 = 1.0 - float(np.var(db - fit)) / variance if variance > 0 else 0.0
    change = float(slope * (t[-1] - t[0]))
    third = max(1, len(db) // 3)
    first, middle, last = (
        float(np.mean(db[:third])),
        float(np.mean(db[third:-third] if len(db) > 2 * third else db)),
        float(np.mean(db[-third:])),
    )
    hump = middle - max(first, last)
    if spread < STEADY_MAX_SPREAD_DB:
        label, confidence = "steady", 0.5 + 0.5 * (1 - spread / STEADY_MAX_SPREAD_DB)
    elif abs(change) >= TREND_MIN_DB and r2 >= TREND_MIN_R2:
        label = "rising" if change > 0 else "falling"
        confidence = r2
    elif hump >= HUMP_MIN_DB:
        label, confidence = "fading in and out", _clip01(0.4 + hump / 30.0)
    else:
        label, confidence = "bursts", _clip01(0.4 + spread / 60.0)
    return {
        "dynamics": label,
        "level_range_db": round(spread, 1),
        "confidence": round(_clip01(confidence), 2),
    }


def describe_recording(
    samples: np.ndarray, sample_rate: int, source_channels: int | None = None
) -> dict[str, Any]:
    """The recording cue of (channels, n) samples; ``source_channels`` from the media probe
    when known (a mono source decoded to a stereo view has two identical channels)."""
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    mono = _mono(samples)
    band = bandwidth(mono, sample_rate)
    noise = noise_and_snr(mono, sample_rate)
    clip = clipping(samples)
    room = reverb(mono, sample_rate, noise["noise_floor_dbfs"])
    space = stereo(samples, source_channels)
    level = dynamics(mono, sample_rate, noise["noise_floor_dbfs"])
    return {
        "bandwidth_hz": band["bandwidth_hz"],
        "band": band["band"],
        "energy_99_hz": band["energy_99_hz"],
        "analysed_up_to_hz": sample_rate // 2,
        "noise_floor_dbfs": noise["noise_floor_dbfs"],
        "snr_db": noise["snr_db"],
        "clipping": clip["clipping"],
        "clipped_fraction": clip["clipped_fraction"],
        "reverb": room["reverb"],
        "decay_s": room["decay_s"],
        "stereo": space["stereo"],
        "stereo_width": space["stereo_width"],
        "dynamics": level["dynamics"],
        "level_range_db": level["level_range_db"],
        "confidence": {
            "band": band["confidence"],
            "noise": noise["confidence"],
            "clipping": clip["confidence"],
            "reverb": room["confidence"],
            "stereo": space["confidence"],
            "dynamics": level["confidence"],
        },
    }
