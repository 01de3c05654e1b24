"""Media errors carry a message fit to show a user as the clip's ``error``."""

import av


class MediaError(Exception):
    """A clip's media could not be used; the message names the cause."""


class DecodeTimeout(MediaError):
    """Decoding ran past the configured per-clip limit."""


def short_reason(exc: Exception) -> str:
    """One line from a decoder's exception, without errno and path: the record names the file."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
