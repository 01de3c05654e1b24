"""What a voice sounds like, from DSP (librosa pYIN + an energy envelope): no weights.

Everything here works on the speech segments the VAD cue found:

* F0: ``librosa.pyin`` (60-600 Hz) on each segment; frames pYIN calls voiced count.
* speaker: the median F0 against the adult male / adult female / child ranges, with a
  low confidence in the overlap (155-175 Hz, no label), low in 175-195 Hz (raised male
  voices) and above 260 Hz (high women's voices and children overlap). LPC formants
  (F1, F2) are reported as evidence for medians of 155-195 Hz when the recording keeps
  3.4 kHz of bandwidth; they decide nothing (they did not separate the labelled clips).
* speaking rate: syllable nuclei, i.e. peaks of the smoothed energy envelope (at least
  2 dB prominence, at least 0.1 s apart, no more than 25 dB under the loudest frame)
  that fall on voiced frames, per second of VAD speech.
* singing: the share of voiced time held on stable notes (within +-0.5 semitone for at
  least 0.25 s) and the voiced share of the speech, fused by the stage with the tagging
  cue's Singing classes.
* turns: consecutive segments (in order) whose median F0 differs from the current
  turn's by at least 4 semitones after a pause of at least 0.2 s start a new turn;
  turns whose levels stay 4 semitones apart count as different speakers.

The thresholds are module constants, documented in ``docs/cues/voice.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusionaudio.backends.model_files import package_version

VERSION = "voice-dsp v1"

FMIN_HZ = 60.0
FMAX_HZ = 600.0
HOP = 256  # at 16 kHz: 16 ms per pYIN frame
FRAME = 1024
MIN_VOICED_S = 0.5  # less voiced time than this: no pitch, no speaker

# speaker: median F0 bands (Hz)
MALE_MAX = 155.0
FEMALE_MIN = 175.0
CHILD_MIN = 260.0
MIN_SPEAKER_CONFIDENCE = 0.4  # below: speaker null
FORMANT_ZONE_MAX = 195.0  # formants are measured (as evidence) for medians 155-195 Hz
# pitch range: median F0 bands (Hz)
LOW_MAX = 145.0
HIGH_MIN = 220.0
# speaking rate (syllables per second of VAD speech)
RATE_SLOW = 3.0
RATE_FAST = 5.5
MIN_RATE_SPEECH_S = 1.0
# turns
TURN_SEMITONES = 4.0
TURN_PAUSE_S = 0.2
MIN_SEGMENT_VOICED = 8  # pYIN frames
# singing
NOTE_SEMITONES = 0.5
NOTE_MIN_S = 0.25


@dataclass(frozen=True)
class SegmentPitch:
    start_s: float
    end_s: float
    f0: np.ndarray  # Hz, NaN where unvoiced
    voiced: np.ndarray  # bool


def _semitones(hz: np.ndarray | float) -> np.ndarray:
    return 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / 55.0)


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


class VoiceDsp:
    name = "dsp"
    model_id = "librosa pyin F0 + LPC formants + energy-envelope syllable nuclei"

    def __init__(self, max_speech_s: float = 30.0) -> None:
        self.max_speech_s = max_speech_s
        self.revision = f"{VERSION}; librosa=={package_version('librosa')}"

    @staticmethod
    def fingerprint() -> dict[str, Any]:
        return {
            "version": VERSION,
            "librosa": package_version("librosa"),
            "f0": {"method": "pyin", "fmin": FMIN_HZ, "fmax": FMAX_HZ, "hop": HOP},
            "speaker_hz": [MALE_MAX, FEMALE_MIN, CHILD_MIN, MIN_SPEAKER_CONFIDENCE],
            "range_hz": [LOW_MAX, HIGH_MIN],
            "rate": [RATE_SLOW, RATE_FAST],
            "turn": [TURN_SEMITONES, TURN_PAUSE_S],
            "note": [NOTE_SEMITONES, NOTE_MIN_S],
        }

    def warm_up(self) -> None:
        """pYIN compiles (numba) on first use: pay that at setup."""
        t = np.arange(16_000) / 16_000
        self.analyse((0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 16_000, [(0.0, 1.0)])

    # -- pieces ---------------------------------------------------------------------------

    def pitch(
        self, signal: np.ndarray, sr: int, segments: Sequence[tuple[float, float]]
    ) -> list[SegmentPitch]:
        import librosa

        out = []
        budget = self.max_speech_s
        for start, end in segments:
            if budget <= 0:
                break
            stop = min(end, start + budget)
            chunk = signal[int(start * sr) : int(stop * sr)].astype(np.float32)
            if len(chunk) < FRAME:
                continue
            budget -= stop - start
            f0, voiced, _ = librosa.pyin(
                chunk, fmin=FMIN_HZ, fmax=FMAX_HZ, sr=sr, frame_length=FRAME, hop_length=HOP
            )
            out.append(SegmentPitch(start, stop, np.asarray(f0), np.asarray(voiced, dtype=bool)))
        return out

    @staticmethod
    def bandwidth_hz(signal: np.ndarray, sr: int) -> float:
        """The frequency under which 99 % of the energy lies (telephone audio: < 4 kHz)."""
        spectrum = np.abs(np.fft.rfft(signal[: sr * 20])) ** 2
        cumulative = np.cumsum(spectrum)
        if cumulative[-1] <= 0:
            return 0.0
        index = int(np.searchsorted(cumulative, 0.99 * cumulative[-1]))
        return float(index * sr / (2 * (len(spectrum) - 1)))

    @staticmethod
    def formants(
        signal: np.ndarray, sr: int, pitches: Sequence[SegmentPitch]
    ) -> tuple[float, float] | None:
        """Median F1 and F2 (Hz) from LPC roots on voiced frames, resampled to 8 kHz."""
        import librosa

        f1s, f2s = [], []
        for seg in pitches:
            chunk = signal[int(seg.start_s * sr) : int(seg.end_s * sr)]
            low = librosa.resample(chunk.astype(np.float32), orig_sr=sr, target_sr=8000)
            low = np.append(low[0], low[1:] - 0.7 * low[:-1])  # pre-emphasis
            for i in np.flatnonzero(seg.voiced):
                centre = int(i * HOP * 8000 / sr)
                frame = low[max(0, centre - 100) : centre + 100]
                if len(frame) < 200 or not np.any(frame):
                    continue
                coeffs = librosa.lpc(frame * np.hamming(len(frame)), order=10)
                roots = [r for r in np.roots(coeffs) if np.imag(r) > 0]
                freqs = sorted(
                    np.angle(r) * 8000 / (2 * np.pi)
                    for r in roots
                    if -np.log(abs(r)) * 8000 / np.pi < 400  # bandwidth < 400 Hz
                )
                freqs = [f for f in freqs if f > 200]
                if len(freqs) >= 2:
                    f1s.append(freqs[0])
                    f2s.append(freqs[1])
        if len(f1s) < 20:
            return None
        return float(np.median(f1s)), float(np.median(f2s))

    @staticmethod
    def syllable_nuclei(
        signal: np.ndarray, sr: int, pitches: Sequence[SegmentPitch]
    ) -> tuple[int, float]:
        """Energy peaks on voiced frames; returns (count, analysed seconds)."""
        import librosa

        # scipy (a librosa dependency) ships no type stubs: import it untyped.
        find_peaks = importlib.import_module("scipy.signal").find_peaks
        hop = sr // 100
        count, seconds = 0, 0.0
        envelopes = []
        for seg in pitches:
            chunk = signal[int(seg.start_s * sr) : int(seg.end_s * sr)].astype(np.float32)
            rms = librosa.feature.rms(y=chunk, frame_length=4 * hop, hop_length=hop)[0]
            db = 20 * np.log10(rms + 1e-9)
            envelopes.append(np.convolve(db, np.ones(5) / 5, mode="same"))
        if not envelopes:
            return 0, 0.0
        loudest = max(float(np.max(e)) for e in envelopes)
        for seg, env in zip(pitches, envelopes, strict=True):
            seconds += seg.end_s - seg.start_s
            peaks, _ = find_peaks(env, prominence=2.0, distance=10, height=loudest - 25.0)
            for p in peaks:
                frame = min(len(seg.voiced) - 1, round(p * hop / HOP))
                lo, hi = max(0, frame - 1), frame + 2
                if np.any(seg.voiced[lo:hi]):
                    count += 1
        return count, seconds

    @staticmethod
    def stable_notes(pitches: Sequence[SegmentPitch], sr: int) -> tuple[float, float]:
        """(share of voiced time on notes held +-0.5 semitone for >= 0.25 s, voiced share)."""
        frame_s = HOP / sr
        min_frames = int(np.ceil(NOTE_MIN_S / frame_s))
        held = voiced_total = frames_total = 0
        for seg in pitches:
            frames_total += len(seg.voiced)
            voiced_total += int(seg.voiced.sum())
            run: list[float] = []
            for f0, v in zip(seg.f0, seg.voiced, strict=True):
                st = float(_semitones(f0)) if v and np.isfinite(f0) else None
                if st is not None and (
                    not run or abs(st - float(np.median(run))) <= NOTE_SEMITONES
                ):
                    run.append(st)
                    continue
                if len(run) >= min_frames:
                    held += len(run)
                run = [] if st is None else [st]
            if len(run) >= min_frames:
                held += len(run)
        if voiced_total == 0:
            return 0.0, 0.0
        return held / voiced_total, voiced_total / max(1, frames_total)

    @staticmethod
    def turns(pitches: Sequence[SegmentPitch]) -> tuple[int, int, list[float]]:
        """(turns, speakers, each turn's median F0 in Hz), by the rule in the module doc."""
        levels: list[tuple[float, float, list[float]]] = []  # (start, end, semitones)
        for seg in pitches:
            voiced = seg.f0[seg.voiced & np.isfinite(seg.f0)]
            if len(voiced) < MIN_SEGMENT_VOICED:
                if levels:  # too little pitch to judge: belongs to the current turn
                    levels[-1] = (levels[-1][0], seg.end_s, levels[-1][2])
                continue
            st = list(_semitones(voiced))
            if levels:
                current = float(np.median(levels[-1][2]))
                pause = seg.start_s - levels[-1][1]
                if pause < TURN_PAUSE_S or abs(float(np.median(st)) - current) < TURN_SEMITONES:
                    levels[-1] = (levels[-1][0], seg.end_s, levels[-1][2] + st)
                    continue
            levels.append((seg.start_s, seg.end_s, st))
        medians = [float(np.median(level[2])) for level in levels]
        speakers: list[float] = []
        for m in medians:
            if all(abs(m - s) >= TURN_SEMITONES for s in speakers):
                speakers.append(m)
        hz = [round(float(55.0 * 2 ** (m / 12)), 1) for m in medians]
        return max(1, len(levels)), max(1, len(speakers)), hz

    # -- decisions ------------------------------------------------------------------------

    @staticmethod
    def speaker(median_hz: float) -> tuple[str | None, float, str]:
        """(label or None, confidence 0..1, the rule that decided); None below 0.4."""
        m = median_hz
        if m < MALE_MAX:
            return "adult male", 0.6 + 0.35 * _clip01((MALE_MAX - m) / 35.0), "f0 below 155 Hz"
        if m < FEMALE_MIN:
            # The overlap: women with low voices and men with high ones.
            return None, 0.3, "f0 in the 155-175 Hz overlap"
        if m < CHILD_MIN:
            # Raised male voices (acting, calling, emotion) reach 175-200 Hz too, so the
            # confidence climbs from 0.45 at 175 Hz to 0.9 at 215 Hz, and falls again
            # towards the children's range.
            edge = min((m - FEMALE_MIN) / 40.0, (CHILD_MIN - m) / 25.0)
            return "adult female", 0.45 + 0.45 * _clip01(edge), "f0 in 175-260 Hz"
        # Above 260 Hz: children, but also high or raised adult female voices.
        return "child", 0.45 + 0.3 * _clip01((m - CHILD_MIN) / 80.0), "f0 above 260 Hz"

    @staticmethod
    def pitch_range(median_hz: float) -> str:
        if median_hz < LOW_MAX:
            return "low"
        return "high" if median_hz >= HIGH_MIN else "mid"

    @staticmethod
    def rate(syllables_per_s: float) -> str:
        if syllables_per_s < RATE_SLOW:
            return "slow"
        return "fast" if syllables_per_s >= RATE_FAST else "moderate"

    def analyse(
        self, signal: np.ndarray, sr: int, segments: Sequence[tuple[float, float]]
    ) -> dict[str, Any]:
        """Pitch, speaker, rate, singing features and turns of the speech in ``segments``."""
        pitches = self.pitch(signal, sr, segments)
        f0 = (
            np.concatenate([p.f0[p.voiced & np.isfinite(p.f0)] for p in pitches])
            if pitches
            else np.zeros(0)
        )
        voiced_s = len(f0) * HOP / sr
        analysed_s = sum(p.end_s - p.start_s for p in pitches)
        evidence: dict[str, Any] = {
            "f0_method": "librosa.pyin 60-600 Hz on the VAD segments",
            "analysed_s": round(analysed_s, 3),
            "voiced_s": round(voiced_s, 3),
        }
        out: dict[str, Any] = {
            "pitch_hz": None,
            "pitch_range": None,
            "speaker": None,
            "speaker_confidence": 0.0,
        }
        if voiced_s >= MIN_VOICED_S:
            median = float(np.median(f0))
            p10, p90 = (float(x) for x in np.percentile(f0, [10, 90]))
            bandwidth = self.bandwidth_hz(signal, sr)
            formants = None
            if MALE_MAX <= median < FORMANT_ZONE_MAX and bandwidth >= 3400:
                # Evidence only: on the labelled clips LPC formants did not separate
                # the sexes (game voices, telephone prompts), so they decide nothing.
                formants = self.formants(signal, sr, pitches)
            label, confidence, rule = self.speaker(median)
            spread = float(_semitones(p90) - _semitones(p10))
            if spread > 12:  # more than an octave between p10 and p90: octave errors likely
                confidence *= 0.8
            if confidence < MIN_SPEAKER_CONFIDENCE:
                label = None
            out.update(
                pitch_hz={"median": round(median, 1), "p10": round(p10, 1), "p90": round(p90, 1)},
                pitch_range=self.pitch_range(median),
                speaker=label,
                speaker_confidence=round(confidence, 2),
            )
            evidence.update(
                speaker_rule=rule,
                f0_spread_semitones=round(spread, 2),
                bandwidth_hz=round(bandwidth),
                formants_hz=None if formants is None else [round(x) for x in formants],
            )
        nuclei, rate_s = self.syllable_nuclei(signal, sr, pitches)
        if rate_s >= MIN_RATE_SPEECH_S:
            per_s = nuclei / rate_s
            out["speaking_rate_syllables_per_s"] = round(per_s, 2)
            out["rate"] = self.rate(per_s)
        else:
            out["speaking_rate_syllables_per_s"] = None
            out["rate"] = None
        evidence["syllable_nuclei"] = nuclei
        held, voiced_share = self.stable_notes(pitches, sr)
        evidence.update(
            held_note_share=round(held, 3),
            voiced_share=round(voiced_share, 3),
        )
        turns, speakers, turn_hz = self.turns(pitches)
        out.update(turns=turns, speakers_estimate=speakers)
        if speakers > 1 and out["speaker"] is not None:
            # The median mixes several voices: no single speaker to name.
            out["speaker"] = None
            out["speaker_confidence"] = min(out["speaker_confidence"], 0.3)
            evidence["speaker_rule"] = "several pitch levels (turns): no single speaker"
        evidence["turn_median_f0_hz"] = turn_hz
        out["evidence"] = evidence
        return out
