"""User-facing errors: each carries a one-line message that names the problem.

The CLI turns any :class:`WsasError` into that line on stderr and exit code 2.
"""


class WsasError(Exception):
    """A problem the user can fix (bad input, missing file, wrong option)."""


class AudioError(WsasError):
    """An audio file or waveform that cannot be used (missing, corrupt, empty, NaN, bad rate)."""


class CaptionError(WsasError):
    """A caption or text query that cannot be used (empty, punctuation only)."""


class CheckpointError(WsasError):
    """A checkpoint that is missing, not ours, or made for another configuration."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
