"""A cooperative time limit, checked between decoded packets.

Decoding happens inside FFmpeg or libsndfile, which cannot be interrupted from
Python; checking between packets bounds the time a slow or huge file can take.
"""

from __future__ import annotations

import time

from fusionaudio.media.errors import DecodeTimeout


class Deadline:
    def __init__(self, seconds: float, what: str = "decoding") -> None:
        self._seconds = seconds
        self._what = what
        self._end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self._end:
            raise DecodeTimeout(
                f"{self._what} took longer than {self._seconds:g} s (decode_timeout_s)"
            )
