"""The ``wsas`` command line: it parses (:mod:`wsas.cli.parser`), calls the library
(:mod:`wsas.cli.commands`) and reports. User errors exit with code 2 and one line on stderr."""

from __future__ import annotations

import signal
import sys
import threading

from wsas.cli.parser import build_parser
from wsas.errors import WsasError


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that every ``finally`` removes its temporary
    files."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop(signum, frame):
    """The first stop signal raises; later ones do nothing, so cleaning up is never cut short
    (and nothing is raised inside a destructor)."""
    for s in STOP_SIGNALS:
        signal.signal(s, _ignore)  # a Python handler: signals already queued find it
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated


def _ignore(signum, frame):
    pass


def user_error(err: BaseException) -> str | None:
    """The one-line message of an error the user can cause, or None for a bug (a traceback)."""
    import csv

    if isinstance(err, WsasError):
        message = str(err)
    elif isinstance(err, OSError) and err.strerror:
        names = [str(f) for f in (err.filename, err.filename2) if f is not None]
        message = f"{' -> '.join(names)}: {err.strerror}" if names else err.strerror
    elif isinstance(err, UnicodeError):
        message = f"cannot decode text ({err})"
    elif isinstance(err, csv.Error):
        message = f"malformed CSV ({err})"
    elif "soundfile" in sys.modules and isinstance(err, sys.modules["soundfile"].SoundFileError):
        message = f"audio I/O failed ({err})"
    elif isinstance(err, OSError):
        message = str(err) or type(err).__name__
    else:
        return None
    return " ".join(message.split()) or type(err).__name__  # always exactly one line


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed in one line
        return int(done.code or 0)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _stop) for s in STOP_SIGNALS} if in_main_thread else {}
    try:
        args.func(args)
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        said = f": {err}" if str(err) else ""  # the trainer's says where its checkpoint is
        print(f"wsas: {'terminated' if terminated else 'interrupted'}{said}", file=sys.stderr)
        return 143 if terminated else 130
    except Exception as err:
        message = user_error(err)
        if message is None or args.debug:
            raise
        print(f"wsas: error: {message}", file=sys.stderr)
        return 2
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
