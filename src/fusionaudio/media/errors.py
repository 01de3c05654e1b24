"""Media errors carry a message fit to show a user as the clip's ``error``."""


class MediaError(Exception):
    """A clip's media could not be used; the message names the cause."""


class DecodeTimeout(MediaError):
    """Decoding ran past the configured per-clip limit."""
