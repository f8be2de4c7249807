"""The ``wsas`` command line. User errors exit with code 2 and one line on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    meta = build_corpus(preset, out, soundfont=args.soundfont, sr=args.sr, workers=args.workers)
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
        raise WsasError(
            f"{args.file}: no column '{args.column}' (columns: {', '.join(rows[0]) if rows else 'none'})"
        )
    started = time.perf_counter()
    counts = collections.Counter(len(parse(r[args.column])) for r in rows if r[args.column].strip())
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    print(
        json.dumps(
            {
                "captions": total,
                "captions_per_second": round(total / seconds),
                "sources": {str(k): counts[k] for k in sorted(counts)},
                "mean_sources": round(sum(k * v for k, v in counts.items()) / max(total, 1), 3),
            },
            indent=2,
        )
    )


def default_clap(data: str) -> str:
    return str(Path(data) / "tinyclap.safetensors")


def cmd_clap_pretrain(args: argparse.Namespace) -> None:
    """Train TinyCLAP on the corpus's clap split, then report its accuracy."""
    import time

    from wsas.clap.tiny import evaluate_clap, pretrain
    from wsas.presets import get_preset

    steps = args.steps or get_preset(args.preset).clap_steps
    out = args.out or default_clap(args.data)
    started = time.time()
    model = pretrain(args.data, out, steps=steps, seed=args.seed)
    report = {
        **evaluate_clap(model, args.data),
        "pretrain_steps": steps,
        "pretrain_seconds": round(time.time() - started, 1),
        "checkpoint": out,
    }
    print(json.dumps(report, indent=2))


def cmd_clap_eval(args: argparse.Namespace) -> None:
    """Zero-shot accuracy and text->audio recall@1 of a CLAP on the corpus's test clips."""
    from wsas.clap.base import load_clap
    from wsas.clap.tiny import evaluate_clap

    checkpoint = args.checkpoint or (default_clap(args.data) if args.backend == "tiny" else None)
    report = {
        "backend": args.backend,
        "checkpoint": checkpoint,
        **evaluate_clap(load_clap(args.backend, checkpoint), args.data, args.split),
    }
    if args.json_out:
        from wsas.results import write_json

        write_json(args.json_out, report)
    print(json.dumps(report, indent=2))


def cmd_clap_score(args: argparse.Namespace) -> None:
    """Cosine similarity of each audio file to each text."""
    from wsas.audio import load
    from wsas.clap.base import load_clap

    clap = load_clap(args.backend, args.checkpoint)
    for path in args.audio:
        wave, sr = load(path)
        sims = clap.similarity(wave[None], sr, args.text)[0]
        print(
            json.dumps(
                {"audio": path, "scores": {t: round(float(s), 4) for t, s in zip(args.text, sims)}}
            )
        )


def cmd_train(args: argparse.Namespace) -> None:
    """Train a separator in one of the six regimes."""
    from wsas.clap.base import load_clap
    from wsas.data.datasets import load_recordings
    from wsas.presets import get_preset
    from wsas.train import TrainConfig, Trainer

    preset = get_preset(args.preset)
    config = TrainConfig(
        mode=args.mode,
        sources=args.sources,
        steps=args.steps or preset.train_steps,
        batch_size=args.batch_size or preset.batch_size,
        lr=args.lr or preset.lr,
        seed=args.seed,
        conditioning=args.conditioning or preset.conditioning,
        clean_fraction=args.clean_fraction,
        val_every=max(1, (args.steps or preset.train_steps) // 4),
        val_mixtures=preset.val_mixtures,
        unet={
            "n_fft": preset.n_fft,
            "hop": preset.hop,
            "channels": preset.unet_channels,
            "levels": preset.unet_levels,
            "convs_per_block": preset.convs_per_block,
        },
    )
    if not (args.data or args.recordings):
        raise WsasError("give --data CORPUS, --recordings LAYOUT:FOLDER, or both")
    if args.clap == "tiny" and not (args.clap_checkpoint or args.data):
        raise WsasError("TinyCLAP needs --clap-checkpoint when there is no --data corpus")
    checkpoint = args.clap_checkpoint or (default_clap(args.data) if args.clap == "tiny" else None)
    recordings = (
        load_recordings(args.recordings, preset.sr, preset.clip_samples, args.seed)
        if args.recordings
        else None
    )
    trainer = Trainer(
        config,
        args.data,
        args.out,
        load_clap(args.clap, checkpoint),
        checkpoint,
        recordings=recordings,
    )
    print(json.dumps(trainer.run(resume=args.resume)))


def cmd_evaluate(args: argparse.Namespace) -> None:
    """SDR/SIR/SAR/SI-SDR of a run on the fixed 2-source test mixtures."""
    from wsas.evaluate import evaluate_run, reference_free
    from wsas.presets import get_preset

    if args.reference_free:
        run = Path(args.run)
        report = reference_free(
            run / "checkpoint.safetensors" if run.is_dir() else run, args.reference_free
        )
        print(
            json.dumps(report, indent=2)
            if args.json
            else f"{report['files']} files: CLAPScore {report['clap_score']:.3f} (mixture "
            f"{report['clap_score_mixture']:.3f}, improvement {report['clapscore_improvement']:+.3f})"
        )
        return
    if not args.data:
        raise WsasError("give --data CORPUS (reference-based scores) or --reference-free FOLDER")
    report = evaluate_run(
        args.run, args.data, args.pairs or get_preset(args.preset).test_mixtures, args.backend
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['mode']} x{report['sources']} ({report['conditioning']}): SDR {report['sdr']:.2f} dB, "
            f"SIR {report['sir']:.2f}, SAR {report['sar']:.2f}, SI-SDR {report['si_sdr']:.2f}, "
            f"SDRi {report['sdri']:.2f}, CLAPScore +{report['clapscore_improvement']:.3f} on {report['pairs']} pairs"
        )


def cmd_reproduce(args: argparse.Namespace) -> None:
    """Run a preset's grids end to end and write results/<preset>/."""
    from wsas.reproduce import reproduce

    summary = reproduce(
        args.preset,
        work=args.work,
        results=args.results,
        only=args.only,
        sources=tuple(args.sources),
        jobs=args.jobs,
    )
    print(
        json.dumps(
            {k: summary[k] for k in ("table1", "table2", "claims", "train_seconds_all_cells")},
            indent=2,
        )
    )


def cmd_separate(args: argparse.Namespace) -> None:
    """Separate files by text queries (-q) or by a whole caption (--caption)."""
    from wsas.captions import parse
    from wsas.separate import Separator, newest_checkpoint

    if bool(args.query) == bool(args.caption):
        raise WsasError("give either -q QUERY (repeatable) or --caption CAPTION")
    checkpoint = args.checkpoint or newest_checkpoint()
    if not args.checkpoint:
        print(f"using checkpoint {checkpoint}", file=sys.stderr)
    sep = Separator.from_checkpoint(checkpoint)
    queries = args.query or parse(args.caption)
    for path in args.mix:
        written = sep.separate_file(
            path,
            queries,
            args.out,
            args.format,
            residual=bool(args.caption or args.residual),
            progress=not args.quiet,
        )
        if args.caption:
            write_caption_manifest(sep, path, args.caption, written, args.out)
        for name, out in written.items():
            print(f"{name}\t{out}")


def write_caption_manifest(sep, mix_path: str, caption: str, written: dict, out_dir: str) -> None:
    """JSON manifest of a caption-driven separation: clause, file, CLAP score, energy share."""
    from wsas.audio import load
    from wsas.results import write_text

    mix, sr = load(mix_path, mono=False)
    limit = 60 * sr  # CLAP scores look at the first minute
    stems = {name: load(path, mono=False)[0] for name, path in written.items()}
    scores = sep.clap_scores({k: v[..., :limit] for k, v in stems.items() if k != "residual"}, sr)
    energy = float(mix.pow(2).sum()) + 1e-12
    rows = [
        {
            "clause": name,
            "file": str(path),
            "clap_score": scores.get(name),
            "energy_share": round(float(stems[name].pow(2).sum()) / energy, 4),
        }
        for name, path in written.items()
    ]
    manifest = Path(out_dir) / f"{Path(mix_path).stem}__manifest.json"
    write_text(
        manifest,
        json.dumps({"mixture": mix_path, "caption": caption, "stems": rows}, indent=2) + "\n",
    )


def cmd_bench(args: argparse.Namespace) -> None:
    """Speed and memory on this machine; JSON to results/bench.json and a table."""
    from wsas.bench import run_bench, table
    from wsas.results import write_json

    report = run_bench(args.preset, args.long_seconds)
    write_json(args.out, report)
    print(json.dumps(report, indent=2))
    print(table(report))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsas", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wsas {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("info", help="versions, device, CLAP backends").set_defaults(func=cmd_info)

    parse = sub.add_parser("parse", help="split a caption into one clause per sound source")
    parse.add_argument("caption", nargs="*", help="the caption (quote it)")
    parse.add_argument("--file", help="a CSV of captions: report the distribution of source counts")
    parse.add_argument(
        "--column", default="caption", help="caption column of --file (default: caption)"
    )
    parse.set_defaults(func=cmd_parse)

    data = sub.add_parser("data", help="build the embedded corpus").add_subparsers(
        dest="data_command", required=True
    )
    build = data.add_parser(
        "build", help="render single-source clips from a General MIDI soundfont"
    )
    build.add_argument(
        "--preset", default="tiny", help="smoke, tiny, small, paper, tiny-var or music"
    )
    build.add_argument(
        "--soundfont", help="a General MIDI .sf2 (default: the one in the pretty_midi wheel)"
    )
    build.add_argument("--out", help="output folder (default: data/PRESET)")
    build.add_argument("--sr", type=int, help="sample rate in Hz (default: the preset's)")
    build.add_argument(
        "--workers", type=int, help="rendering processes (default: every core; same files)"
    )
    build.set_defaults(func=cmd_data_build)

    clap = sub.add_parser("clap", help="the CLAP models").add_subparsers(
        dest="clap_command", required=True
    )
    pre = clap.add_parser("pretrain", help="train TinyCLAP on a corpus's clap split")
    pre.add_argument("--data", required=True, help="corpus folder (wsas data build)")
    pre.add_argument("--out", help="checkpoint (default: DATA/tinyclap.safetensors)")
    pre.add_argument("--preset", default="tiny")
    pre.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    pre.add_argument("--seed", type=int, default=0)
    pre.set_defaults(func=cmd_clap_pretrain)
    for name, helptext, func in (
        ("eval", "zero-shot accuracy and recall@1", cmd_clap_eval),
        ("score", "similarity of audio files to texts", cmd_clap_score),
    ):
        p = clap.add_parser(name, help=helptext)
        p.add_argument("--backend", default="tiny", choices=["tiny", "laion"])
        p.add_argument(
            "--checkpoint", help="CLAP checkpoint (tiny default: DATA/tinyclap.safetensors)"
        )
        if name == "eval":
            p.add_argument("--data", required=True)
            p.add_argument("--split", default="test")
            p.add_argument("--json-out", help="also write the report to this JSON file")
        else:
            p.add_argument("audio", nargs="+", help="audio file(s)")
            p.add_argument(
                "--text", "-t", action="append", required=True, help="a text (repeat for more)"
            )
        p.set_defaults(func=func)

    train = sub.add_parser("train", help="train a separator")
    train.add_argument(
        "--mode", required=True, help="supervised, mix-and-separate, pit, mixit, weak or semi"
    )
    train.add_argument("--sources", type=int, default=2, help="sources per training mixture")
    train.add_argument(
        "--data", help="embedded corpus folder (training clips, validation pairs, TinyCLAP)"
    )
    train.add_argument(
        "--recordings",
        metavar="LAYOUT:FOLDER",
        help="train mix-and-separate/mixit/weak on real captioned recordings instead, e.g. "
        "audiocaps:/data/audiocaps (layouts: audiocaps, clotho, vggsound, music)",
    )
    train.add_argument("--out", required=True, help="run folder (checkpoint, log.csv, train.json)")
    train.add_argument("--preset", default="tiny", help="model size and budget")
    train.add_argument("--steps", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--conditioning", choices=["deep", "late"], help="default: the preset's")
    train.add_argument(
        "--clean-fraction", type=float, default=1.0, help="supervised/semi: clean share of clips"
    )
    train.add_argument("--clap", default="tiny", choices=["tiny", "laion"])
    train.add_argument("--clap-checkpoint")
    train.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoint.safetensors"
    )
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="SDR/SIR/SAR on the fixed 2-source test mixtures")
    ev.add_argument("run", help="a run folder or checkpoint")
    ev.add_argument("--data", help="corpus folder (fixed 2-source test mixtures with references)")
    ev.add_argument(
        "--reference-free",
        metavar="FOLDER",
        help="CLAPScore on FOLDER/captions.csv (file,caption): no clean references needed",
    )
    ev.add_argument("--preset", default="tiny")
    ev.add_argument("--pairs", type=int, help="test mixtures (default: the preset's)")
    ev.add_argument("--backend", default="fast", choices=["fast", "mir_eval"])
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    sep = sub.add_parser("separate", help="separate recordings by text queries or a caption")
    sep.add_argument(
        "mix", nargs="+", help="audio file(s): wav, flac, ogg, mp3 ... any rate, any channels"
    )
    sep.add_argument("-q", "--query", action="append", help="a text query (repeatable)")
    sep.add_argument(
        "--caption", help="a caption: one stem per clause, plus the residual and a manifest"
    )
    sep.add_argument("--checkpoint", help="separator checkpoint (default: the newest under work/)")
    sep.add_argument("-o", "--out", default="separated", help="output folder (default: separated/)")
    sep.add_argument("--format", default="wav", choices=["wav", "flac"])
    sep.add_argument(
        "--residual", action="store_true", help="also write mixture minus all estimates"
    )
    sep.add_argument("--quiet", action="store_true", help="no progress bar")
    sep.set_defaults(func=cmd_separate)

    rep = sub.add_parser("reproduce", help="the paper's Tables 1 and 2 end to end")
    rep.add_argument("--preset", default="tiny", help="smoke, tiny, small or paper")
    rep.add_argument(
        "--work", default="work", help="folder for data, CLAP and runs (default: work/)"
    )
    rep.add_argument(
        "--results", default="results", help="folder for result files (default: results/)"
    )
    rep.add_argument(
        "--only",
        action="append",
        help="train only cells of this mode now (repeatable); finished cells are still reported",
    )
    rep.add_argument(
        "--sources",
        type=int,
        nargs="+",
        default=[2],
        help="smoke/tiny: also train the unsupervised methods on these mixture sizes (e.g. 2 3 4)",
    )
    rep.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train this many cells at once, CPU threads split between them (default: 1)",
    )
    rep.set_defaults(func=cmd_reproduce)

    bench = sub.add_parser(
        "bench", help="inference RTF, memory, shared-encoder speed-up, BSS Eval speed"
    )
    bench.add_argument("--preset", default="tiny")
    bench.add_argument(
        "--long-seconds", type=float, default=600.0, help="length of the long-file test (s)"
    )
    bench.add_argument("--out", default="results/bench.json")
    bench.set_defaults(func=cmd_bench)
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
