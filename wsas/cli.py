"""The ``wsas`` command line. User errors exit with code 2 and one line on stderr."""

from __future__ import annotations

import argparse
import json
import sys

from wsas import __version__
from wsas.errors import WsasError


def cmd_info(args: argparse.Namespace) -> None:
    """Print versions, devices, CLAP backends and the embedded soundfont location."""
    from wsas.info import machine_info

    print(json.dumps(machine_info(), indent=2))


def cmd_data_build(args: argparse.Namespace) -> None:
    """Render the embedded corpus of a preset."""
    import time

    from wsas.data.synth import build_corpus
    from wsas.presets import get_preset

    preset = get_preset(args.preset)
    out = args.out or f"data/{preset.name}"
    started = time.time()
    meta = build_corpus(preset, out, soundfont=args.soundfont, sr=args.sr)
    print(f"wrote {meta} ({time.time() - started:.1f} s)")


def cmd_parse(args: argparse.Namespace) -> None:
    """Print the clauses of a caption, or the source-count distribution of a CSV column."""
    from wsas.captions import parse

    if args.file is None:
        if not args.caption:
            raise WsasError("give a caption or --file CAPTIONS.csv")
        print(json.dumps(parse(" ".join(args.caption))))
        return
    import collections
    import csv
    import time

    try:
        with open(args.file, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise WsasError(f"{args.file}: cannot read ({err.strerror})") from None
    if not rows or args.column not in rows[0]:
        raise WsasError(f"{args.file}: no column '{args.column}' (columns: {', '.join(rows[0]) if rows else 'none'})")
    started = time.perf_counter()
    counts = collections.Counter(len(parse(r[args.column])) for r in rows if r[args.column].strip())
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    print(json.dumps({"captions": total, "captions_per_second": round(total / seconds),
                      "sources": {str(k): counts[k] for k in sorted(counts)},
                      "mean_sources": round(sum(k * v for k, v in counts.items()) / max(total, 1), 3)}, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsas", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wsas {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("info", help="versions, device, CLAP backends").set_defaults(func=cmd_info)

    parse = sub.add_parser("parse", help="split a caption into one clause per sound source")
    parse.add_argument("caption", nargs="*", help="the caption (quote it)")
    parse.add_argument("--file", help="a CSV of captions: report the distribution of source counts")
    parse.add_argument("--column", default="caption", help="caption column of --file (default: caption)")
    parse.set_defaults(func=cmd_parse)

    data = sub.add_parser("data", help="build the embedded corpus").add_subparsers(dest="data_command", required=True)
    build = data.add_parser("build", help="render single-source clips from a General MIDI soundfont")
    build.add_argument("--preset", default="tiny", help="smoke, tiny, small or paper")
    build.add_argument("--soundfont", help="a General MIDI .sf2 (default: the one in the pretty_midi wheel)")
    build.add_argument("--out", help="output folder (default: data/PRESET)")
    build.add_argument("--sr", type=int, help="sample rate in Hz (default: the preset's)")
    build.set_defaults(func=cmd_data_build)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (WsasError, FileNotFoundError) as err:
        if args.debug:
            raise
        print(f"wsas: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wsas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
