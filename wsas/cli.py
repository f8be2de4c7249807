"""The ``wsas`` command line. User errors exit with code 2 and one line on stderr."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
from pathlib import Path

from wsas import __version__
from wsas.errors import WsasError


def cmd_info(args: argparse.Namespace) -> None:
    """Print versions, devices, CLAP backends and the embedded soundfont location."""
    from wsas.info import machine_info

    print(json.dumps(machine_info(args.clap_checkpoint), indent=2))


def cmd_data_build(args: argparse.Namespace) -> None:
    """Render the embedded corpus of a preset."""
    import time

    from wsas.audio import check_rate
    from wsas.data.synth import build_corpus
    from wsas.presets import get_preset

    preset = get_preset(args.preset)
    out = Path(args.out or f"data/{preset.name}")
    if args.sr is not None:
        check_rate(args.sr, "--sr")
    if out.exists() and not out.is_dir():
        raise WsasError(f"{out}: exists and is not a folder (--out names the corpus folder)")
    started = time.time()
    meta = build_corpus(
        preset, out, args.soundfont, args.sr, progress=not args.quiet, workers=args.workers
    )
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
    import time

    from wsas.data.datasets import read_table

    rows = read_table(args.file, (args.column,))
    captions = [r.get(args.column) or "" for r in rows]
    if not any(c.strip() for c in captions):
        raise WsasError(f"{args.file}: no captions in column '{args.column}'")
    started = time.perf_counter()
    counts = collections.Counter(len(parse(c)) for c in captions if c.strip())
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

    from wsas.clap import load_clap
    from wsas.clap.pretrain import evaluate_clap, pretrain
    from wsas.presets import get_preset
    from wsas.reproduce import size_checkpoint, text_donor

    preset = get_preset(args.preset)
    steps, size = args.steps or preset.clap_steps, args.size or preset.critic
    # the preset's size is the critic training loads; another size goes beside it, not over it
    grid_ckpt = Path(default_clap(args.data))
    out = args.out or str(size_checkpoint(grid_ckpt, size, preset.critic))
    donor = text_donor(grid_ckpt, size, preset.critic)  # learns into the text space of that one
    if donor is not None and not donor.is_file():
        raise WsasError(
            f"a {size} TinyCLAP learns into the text space of {donor}: pretrain it first"
        )
    text_from = None if donor is None else load_clap("tiny", donor)
    started = time.time()
    model = pretrain(args.data, out, steps=steps, seed=args.seed, size=size, text_from=text_from)
    report = {
        "size": size,
        **evaluate_clap(model, args.data),
        "pretrain_steps": steps,
        "pretrain_seconds": round(time.time() - started, 1),
        "checkpoint": out,
    }
    print(json.dumps(report, indent=2))


def cmd_clap_eval(args: argparse.Namespace) -> None:
    """Zero-shot accuracy and text->audio recall@1 of a CLAP on the corpus's test clips."""
    from wsas.clap import load_clap
    from wsas.clap.pretrain import evaluate_clap

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
    from wsas.clap import load_clap
    from wsas.separate import check_queries

    texts = check_queries(args.text)
    clap = load_clap(args.backend, args.checkpoint)
    for path in args.audio:
        wave, sr = load(path)
        sims = clap.similarity(wave[None], sr, texts)[0]
        print(
            json.dumps(
                {"audio": path, "scores": {t: round(float(s), 4) for t, s in zip(texts, sims)}}
            )
        )


def device(name: str | None) -> str | None:
    """A ``--device`` choice checked against this machine (None: the default device)."""
    import torch

    if name is None:
        return None
    try:
        chosen = torch.device(name)
    except RuntimeError:
        raise WsasError(f"--device {name}: not a device (cpu, cuda or cuda:N)") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise WsasError(f"--device {name}: this machine has no CUDA device")
    return name


def cmd_train(args: argparse.Namespace) -> None:
    """Train a separator in one of the regimes."""
    device(args.device)
    from wsas.clap import load_clap
    from wsas.data.datasets import is_labelled, load_clips, load_recordings
    from wsas.presets import get_preset
    from wsas.train import Trainer

    if args.minutes is not None and args.steps is not None:
        raise WsasError("give --steps or --minutes, not both")
    preset = get_preset(args.preset)
    config = preset.train_config(
        args.mode,
        args.conditioning,
        args.steps,
        minutes=args.minutes,
        sources=args.sources,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        clean_fraction=args.clean_fraction,
        recon_loss=args.recon_loss,
        normalise_levels=args.normalise_levels or None,
        clap_seconds=args.clap_seconds,
        clause_level=args.clause_level,
        clause_level_weight=args.clause_level_weight,
        clause_floor_db=args.clause_floor,
        bf16=args.bf16 or None,
        critic_bf16=False if args.fp32_critic else None,
        grid_crop=args.grid_crop or None,
    )
    if not (args.data or args.recordings):
        raise WsasError("give --data CORPUS, --recordings LAYOUT:FOLDER, or both")
    corpus = args.data and not is_labelled(args.data)
    if args.clap == "tiny" and not (args.clap_checkpoint or corpus):
        raise WsasError("TinyCLAP needs --clap-checkpoint when --data is not an embedded corpus")
    checkpoint = args.clap_checkpoint or (default_clap(args.data) if args.clap == "tiny" else None)
    size = {} if corpus else {"sr": preset.sr, "clip_samples": preset.clip_samples}
    val = None
    if args.data:
        try:
            val = load_clips(args.data, "val", **size)
        except WsasError:
            if corpus:
                raise
    if args.recordings:
        train = load_recordings(args.recordings, preset.sr, preset.clip_samples, args.seed)
    else:
        train = load_clips(args.data, "train", **size)
    clap = load_clap(args.clap, checkpoint)
    trainer = Trainer(config, clap, args.out, train, val, device=args.device, compile=args.compile)
    print(json.dumps(trainer.run(resume=args.resume)))


def cmd_evaluate(args: argparse.Namespace) -> None:
    """SDR/SIR/SAR/SI-SDR of a run on the fixed 2-source test mixtures."""
    from wsas.bundle import checkpoint_of
    from wsas.evaluate import evaluate_run, reference_free
    from wsas.presets import get_preset

    if args.reference_free:
        report = reference_free(checkpoint_of(args.run), args.reference_free)
        print(
            json.dumps(report, indent=2)
            if args.json
            else f"{report['files']} files: CLAPScore {report['clap_score']:.3f} (mixture "
            f"{report['clap_score_mixture']:.3f}, "
            f"improvement {report['clapscore_improvement']:+.3f})"
        )
        return
    if not args.data:
        raise WsasError("give --data CORPUS (reference-based scores) or --reference-free FOLDER")
    if args.pairs is not None and args.pairs < 1:
        raise WsasError(f"--pairs {args.pairs}: give a positive number of test mixtures")
    preset = get_preset(args.preset)
    pairs = args.pairs or preset.test_mixtures
    report = evaluate_run(
        args.run, args.data, pairs, args.backend, clip_samples=preset.test_samples
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['mode']} x{report['sources']} ({report['conditioning']}): "
            f"SDR {report['sdr']:.2f} dB, SIR {report['sir']:.2f}, SAR {report['sar']:.2f}, "
            f"SI-SDR {report['si_sdr']:.2f}, SDRi {report['sdri']:.2f}, "
            f"CLAPScore +{report['clapscore_improvement']:.3f} on {report['pairs']} pairs"
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
        resume=args.resume,
        seeds=tuple(args.seeds),
    )
    print(
        json.dumps(
            {k: summary[k] for k in ("table1", "table2", "claims", "train_seconds_all_cells")},
            indent=2,
        )
    )


def note(message: str) -> None:
    """One line on stderr that is not an error."""
    print(f"wsas: note: {message}", file=sys.stderr)


def cmd_separate(args: argparse.Namespace) -> None:
    """Separate files by text queries (-q) or by a whole caption (--caption).

    Every output name is planned and checked before any work: names never clash (see
    ``wsas.separate.output_names``/``unique_prefixes``), repeated queries and inputs are done
    once, existing outputs are refused unless ``--overwrite``, and an input is never replaced.
    """
    device(args.device)
    from wsas.audio import open_audio
    from wsas.captions import parse
    from wsas.separate import (
        Separator,
        check_queries,
        output_names,
        unique_prefixes,
    )

    if bool(args.query) == bool(args.caption):
        raise WsasError("give either -q QUERY (repeatable) or --caption CAPTION")
    asked = check_queries(args.query) if args.query else parse(args.caption)
    queries = list(dict.fromkeys(asked))
    if len(queries) < len(asked):
        repeated = sorted({q for q in asked if asked.count(q) > 1})
        note(f"repeated {'queries' if args.query else 'clauses'} separated once: {repeated}")
    first: dict[Path, str] = {}
    for mix in args.mix:
        first.setdefault(Path(mix).resolve(), mix)
    mixes = list(first.values())
    if len(mixes) < len(args.mix):
        note("an input given twice is separated once")
    rates = {}
    for mix in mixes:  # every input is readable before any work starts
        with open_audio(mix) as f:
            rates[mix] = f.samplerate
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise WsasError(f"{out}: exists and is not a folder (-o names the output folder)")
    residual = bool(args.caption or args.residual)
    plan = [
        (mix, prefix, output_names(prefix, queries, out, args.format, residual))
        for mix, prefix in zip(mixes, unique_prefixes(mixes))
    ]
    targets = [
        p for _, prefix, names in plan for p in [*names.values(), manifest_path(out, prefix)]
    ]
    inputs = {Path(m).resolve() for m in mixes}
    if any(p.resolve() in inputs for p in targets):
        hit = next(p for p in targets if p.resolve() in inputs)
        raise WsasError(f"{hit}: is an input and would be overwritten; choose another -o")
    existing = [p for p in targets if p.exists()]
    if existing and not args.overwrite:
        more = f" (and {len(existing) - 1} more outputs)" if len(existing) > 1 else ""
        raise WsasError(f"{existing[0]}: exists{more}; pass --overwrite to replace")
    if args.checkpoint:
        sep = Separator.from_checkpoint(args.checkpoint, args.device)
        used = f"the checkpoint {args.checkpoint} ({sep.config['train']['mode']}, "
    else:
        sep = Separator.from_pretrained(args.model, args.device)
        used = f"the shipped model '{args.model}' (`wsas models` describes it; "
    if not args.quiet:
        note(f"using {used}{sep.sample_rate} Hz)")
    if args.verbose:
        for mix, sr in rates.items():
            if sr == sep.sample_rate:
                note(f"{mix}: {sr} Hz, the model's rate: no resampling")
            else:
                note(
                    f"{mix}: resampled {sr} Hz -> {sep.sample_rate} Hz for the model; "
                    f"outputs written at {sr} Hz"
                )
    new_top = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)
    try:
        for mix, prefix, _ in plan:
            written = sep.separate_file(
                mix, queries, out, args.format, residual, not args.quiet, prefix=prefix
            )
            write_manifest(sep, mix, written, manifest_path(out, prefix), args.caption)
            if sep.output_gain != 1.0:
                note(f"{mix}: outputs scaled by {sep.output_gain:.4f} to fit {args.format.upper()}")
            for name, path in written.items():
                print(f"{name}\t{path}")
    except BaseException:
        remove_empty_folders(out, new_top)  # a failed run leaves no empty folder behind
        raise
    files, manifests = sum(len(names) for _, _, names in plan), len(plan)
    if not args.quiet:
        note(
            f"wrote {files} audio file{'s' * (files != 1)} and {manifests} "
            f"manifest{'s' * (manifests != 1)} to {out}"
        )


def remove_empty_folders(folder: Path, top: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``top`` (the first one this run created) while
    they are empty; nothing when ``top`` is None (the folder existed before)."""
    for path in [folder, *folder.parents] if top is not None else []:
        if not path.is_dir() or any(path.iterdir()):
            return
        path.rmdir()
        if path == top:
            return


def manifest_path(out_dir: str | Path, prefix: str) -> Path:
    return Path(out_dir) / f"{prefix}__manifest.json"


def write_manifest(sep, mix_path: str, written: dict, path: Path, caption: str | None) -> None:
    """JSON manifest of one separated file: query (or clause) -> file, and the output gain.

    A caption-driven separation adds each clause's CLAP score and energy share (of the mixture
    times the gain squared, i.e. as written).
    """
    from wsas.results import write_text

    gain = sep.output_gain
    head = {"mixture": str(mix_path), "gain": gain}
    if "residual" in written:
        head["sum"] = "stems + residual = gain * mixture"
    if caption is None:
        rows = [{"query": q, "file": str(p)} for q, p in written.items()]
        write_text(path, json.dumps({**head, "stems": rows}, indent=2, ensure_ascii=False) + "\n")
        return
    from wsas.audio import load

    mix, sr = load(mix_path, mono=False)
    limit = 60 * sr  # CLAP scores look at the first minute
    stems = {name: load(p, mono=False)[0] for name, p in written.items()}
    scores = sep.clap_scores({k: v[..., :limit] for k, v in stems.items() if k != "residual"}, sr)
    energy = float(mix.pow(2).sum()) * gain**2 + 1e-12
    rows = [
        {
            "clause": name,
            "file": str(p),
            "clap_score": scores.get(name),
            "energy_share": round(float(stems[name].pow(2).sum()) / energy, 4),
        }
        for name, p in written.items()
    ]
    text = json.dumps({**head, "caption": caption, "stems": rows}, indent=2, ensure_ascii=False)
    write_text(path, text + "\n")


def cmd_models(args: argparse.Namespace) -> None:
    """The shipped pretrained models and their cards (``--remake``: train them again first)."""
    from wsas.pretrained import cards

    options = {
        "--preset": args.preset,
        "--work": args.work,
        "--seed": args.seed,
        "--only": args.only,
    }
    if not args.remake and (given := [k for k, v in options.items() if v is not None]):
        raise WsasError(f"{', '.join(given)} only go with --remake")
    if args.remake:
        from wsas.presets import get_preset
        from wsas.reproduce import SHIPPED, remake_shipped

        modes = tuple(m.strip() for m in args.only.split(",")) if args.only else SHIPPED
        preset = get_preset(args.preset or "tiny")
        remake_shipped(preset, args.work or "work", modes, seed=args.seed or 0)
    shipped = cards()
    if not shipped:
        print("no shipped models in this version")
    for name, card in shipped.items():
        si, sdr = card["test_si_sdr_db"], card["test_sdr_db"]
        error = card.get("test_level_error_db")  # cards made before it was measured: none
        level = "" if error is None else f", level error {error:+.2f} dB"
        print(
            f"{name}: {card['mode']} ({card['conditioning']}), {card['sample_rate']} Hz, "
            f"{card['size_mb']} MB; test SI-SDR {si['mean']} dB {si['ci95']}, SDR {sdr['mean']} "
            f"dB {sdr['ci95']} on {card['test_pairs']} mixtures{level}; trained on "
            f"{card['trained_on']}"
        )
    if args.json:
        print(json.dumps(shipped, indent=2))


def cmd_bench(args: argparse.Namespace) -> None:
    """Speed and memory on this machine; JSON to results/bench.json and a table."""
    from wsas.bench import merge_report, run_bench, table
    from wsas.presets import get_preset
    from wsas.results import provenance, write_json

    sections = None if args.only is None else [s for s in args.only.split(",") if s]
    try:
        minutes = [float(m) for m in args.convergence.split(",")] if args.convergence else []
        if not all(math.isfinite(m) and m > 0 for m in minutes):
            raise ValueError
    except ValueError:
        raise WsasError(f"--convergence {args.convergence!r}: give minutes like 5,15") from None
    given = {
        "bf16": args.bf16,
        "grid_crop": args.grid_crop,
        **{k: getattr(args, k) is not None for k in ("seeds", "lr", "batch_size")},
    }
    for flag, asked in given.items():
        if asked and not minutes:
            raise WsasError(
                f"--{flag.replace('_', '-')} applies to the convergence runs: give --convergence "
                "MINUTES"
            )
    preset = get_preset(args.preset)
    tuned = {  # the values that differ from the preset's
        k: getattr(args, k)
        for k in ("lr", "batch_size")
        if getattr(args, k) not in (None, getattr(preset, k))
    }
    for flag, value in tuned.items():
        if not (math.isfinite(value) and value > 0):
            raise WsasError(f"--{flag.replace('_', '-')} must be positive, got {value:g}")
    tuned |= {"grid_crop": True} if args.grid_crop else {}
    seeds = tuple(dict.fromkeys(args.seeds or (0,)))  # each seed once
    report = run_bench(
        args.preset, args.long_seconds, sections, args.against, minutes, args.bf16, seeds, tuned
    )
    out = Path(args.out)
    earlier = json.loads(out.read_text()) if out.is_file() else {}
    write_json(out, merge_report(earlier, report, provenance()))
    print(table(report))


class OneLineParser(argparse.ArgumentParser):
    """Usage errors (unknown option, invalid choice) as one line and exit code 2, like every
    other user error."""

    def error(self, message: str):
        self.exit(2, f"wsas: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from wsas.clap import BACKENDS
    from wsas.clap.tiny import SIZES as TINY_SIZES
    from wsas.presets import CLAUSE_LEVELS, PRESETS
    from wsas.regimes import REGIMES

    parser = OneLineParser(prog="wsas", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wsas {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="versions, device, CLAP backends")
    info.add_argument("--clap-checkpoint", help="a LAION-CLAP weights file to look for")
    info.set_defaults(func=cmd_info)
    models = sub.add_parser("models", help="the shipped pretrained models and their cards")
    models.add_argument("--json", action="store_true", help="also print the cards as JSON")
    models.add_argument(
        "--remake",
        action="store_true",
        help="train the shipped models again from scratch (the preset's corpus, critic and "
        "budget, deep conditioning), score their float16 weights and rewrite wsas/pretrained",
    )
    models.add_argument("--preset", choices=list(PRESETS), help="with --remake (default: tiny)")
    models.add_argument("--work", help="with --remake: data, CLAP and runs (default: work/)")
    models.add_argument("--seed", type=int, help="with --remake (default: 0)")
    models.add_argument(
        "--only", metavar="MODES", help="with --remake: comma-separated regimes (default: all 3)"
    )
    models.set_defaults(func=cmd_models)

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
    build.add_argument("--preset", default="tiny", choices=list(PRESETS))
    build.add_argument(
        "--soundfont", help="a General MIDI .sf2 (default: the one in the pretty_midi wheel)"
    )
    build.add_argument("--out", help="output folder (default: data/PRESET)")
    build.add_argument("--sr", type=int, help="sample rate in Hz (default: the preset's)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.add_argument(
        "--workers", type=int, help="rendering processes (default: every core; same files)"
    )
    build.set_defaults(func=cmd_data_build)

    clap = sub.add_parser("clap", help="the CLAP models").add_subparsers(
        dest="clap_command", required=True
    )
    pre = clap.add_parser("pretrain", help="train TinyCLAP on a corpus's clap split")
    pre.add_argument("--data", required=True, help="corpus folder (wsas data build)")
    pre.add_argument(
        "--out",
        help="checkpoint (default: DATA/tinyclap.safetensors, DATA/tinyclap-SIZE.safetensors for "
        "a --size other than the preset's)",
    )
    pre.add_argument("--preset", default="tiny", choices=list(PRESETS))
    pre.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument(
        "--size",
        choices=list(TINY_SIZES),
        help="full, lean (a weak step 1.7-2.3x faster, the same zero-shot accuracy on tiny's "
        "corpus, poorer queries) or leanaudio (lean's audio tower learned into the text space of "
        "the full TinyCLAP beside it: the same queries); default: the preset's critic "
        "(Preset.critic: full for every committed grid)",
    )
    pre.set_defaults(func=cmd_clap_pretrain)
    for name, helptext, func in (
        ("eval", "zero-shot accuracy and recall@1", cmd_clap_eval),
        ("score", "similarity of audio files to texts", cmd_clap_score),
    ):
        p = clap.add_parser(name, help=helptext)
        p.add_argument("--backend", default="tiny", choices=list(BACKENDS))
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
    train.add_argument("--mode", required=True, choices=list(REGIMES), help="the training regime")
    train.add_argument("--sources", type=int, default=2, help="sources per training mixture")
    train.add_argument(
        "--data",
        help="embedded corpus folder (training clips, validation pairs, TinyCLAP), or a labelled "
        "layout music:DIR / vggsound:DIR",
    )
    train.add_argument(
        "--recordings",
        metavar="LAYOUT:FOLDER",
        help="train mix-and-separate/mixit/weak on real captioned recordings instead, e.g. "
        "audiocaps:/data/audiocaps (layouts: audiocaps, clotho, vggsound, music)",
    )
    train.add_argument("--out", required=True, help="run folder (checkpoint, log.csv, train.json)")
    train.add_argument("--preset", default="tiny", choices=list(PRESETS), help="size, budget")
    train.add_argument("--steps", type=int)
    train.add_argument(
        "--minutes",
        type=float,
        help="train for this much wall time instead of --steps (validation included, at least "
        "every quarter of it); the learning-rate schedule follows the time trained",
    )
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--conditioning", choices=["deep", "late", "cross"], help="default: the preset's"
    )
    train.add_argument(
        "--recon-loss",
        choices=["magnitude", "snr"],
        help="supervised (and semi's supervised half), mix-and-separate: the paper's magnitude "
        "L1 (default) or waveform SNR; the other regimes refuse snr",
    )
    train.add_argument(
        "--normalise-levels",
        action="store_true",
        help="divide the magnitude losses' spectrograms by each example's mean mixture magnitude "
        "(loss weights then mean the same at any level; default: the paper's magnitudes)",
    )
    train.add_argument(
        "--clap-seconds",
        type=float,
        help="weak/semi: the CLAP critic hears the loudest this-many seconds of each clause "
        "estimate (default: all of it, as in the paper; shorter is cheaper)",
    )
    train.add_argument(
        "--clause-level",
        choices=CLAUSE_LEVELS,
        help="weak/semi (not in the paper): a magnitude target for clause estimates: floor (each "
        "keeps at least --clause-floor of its mixture's energy) or energy (their energies add "
        "up to their mixture's); default: none",
    )
    train.add_argument(
        "--clause-level-weight", type=float, help="weight of --clause-level (default 1)"
    )
    train.add_argument(
        "--clause-floor",
        type=float,
        metavar="DB",
        help="--clause-level floor: the level relative to its mixture (dB, negative) a clause "
        "estimate must keep (default -12)",
    )
    train.add_argument(
        "--clean-fraction", type=float, default=1.0, help="supervised/semi: clean share of clips"
    )
    train.add_argument("--clap", default="tiny", choices=list(BACKENDS))
    train.add_argument("--clap-checkpoint")
    train.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoint.safetensors"
    )
    train.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    train.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the U-Net (the first step compiles it; on CPU it is now slower: "
        "the deep weak step 1.76 s against 1.43 s eager on 2 cores)",
    )
    train.add_argument(
        "--bf16",
        action="store_true",
        help="bf16 autocast on CPU too (always on CUDA): a step 1.2-1.5x faster on a CPU with "
        "bf16 instructions (avx512_bf16, AMX; wsas bench), slower on one without",
    )
    train.add_argument(
        "--fp32-critic",
        action="store_true",
        help="weak/semi: the critic hears clause estimates in float32 (default, for TinyCLAP: "
        "bf16 where the device computes it natively, e.g. avx512_bf16: weak step 1.2x faster "
        "late and deep)",
    )
    train.add_argument(
        "--grid-crop",
        action="store_true",
        help="train on random crops whose STFT frames fill the U-Net's grid, so no step computes "
        "padding (tiny: 16383 of a clip's 16384 samples, 128 frames instead of 129 padded to "
        "144)",
    )
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="SDR/SIR/SAR on the fixed 2-source test mixtures")
    ev.add_argument("run", help="a run folder or checkpoint")
    ev.add_argument(
        "--data", help="corpus folder or music:DIR / vggsound:DIR (2-source test mixtures)"
    )
    ev.add_argument(
        "--reference-free",
        metavar="FOLDER",
        help="CLAPScore on FOLDER/captions.csv (file,caption): no clean references needed",
    )
    ev.add_argument("--preset", default="tiny", choices=list(PRESETS))
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
    sep.add_argument("--checkpoint", help="a run folder or checkpoint (default: --model)")
    sep.add_argument("-o", "--out", default="separated", help="output folder (default: separated/)")
    sep.add_argument("--format", default="wav", choices=["wav", "flac"])
    sep.add_argument(
        "--residual", action="store_true", help="also write mixture minus all estimates"
    )
    sep.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (default: refuse)"
    )
    sep.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (shown for inputs of a minute or more), no note on model and outputs",
    )
    sep.add_argument(
        "--verbose", action="store_true", help="also say how each input is resampled for the model"
    )
    sep.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    sep.add_argument("--model", default="weak", help="a shipped model (wsas models; default: weak)")
    sep.set_defaults(func=cmd_separate)

    rep = sub.add_parser("reproduce", help="the paper's Tables 1 and 2 end to end")
    rep.add_argument("--preset", default="tiny", choices=list(PRESETS))
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
        default=[],
        help="also train the unsupervised methods on these mixture sizes (e.g. 3 4)",
    )
    rep.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[],
        help="train these seeds instead of the preset's (e.g. 0: tiny in about a third of the "
        "time; verdicts then rest on one seed)",
    )
    rep.add_argument(
        "--resume",
        action="store_true",
        help="keep cells already in RESULTS/PRESET/cells and continue half-trained runs "
        "(default: train every cell; committed results are only compared with)",
    )
    rep.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train this many cells at once, CPU threads split between them (default: 1)",
    )
    rep.set_defaults(func=cmd_reproduce)

    bench = sub.add_parser(
        "bench",
        help="step time by phase, shared-encoder speed-up, paper-size step, inference, BSS Eval",
    )
    bench.add_argument("--preset", default="tiny", choices=list(PRESETS))
    bench.add_argument(
        "--only",
        help="comma-separated sections of steps, shared_encoder, paper_step, inference, "
        "bss_eval (default: all; '' for none, e.g. with --convergence)",
    )
    bench.add_argument(
        "--against", metavar="REV", help="also time training steps of git revision REV (before)"
    )
    bench.add_argument(
        "--convergence",
        metavar="MINUTES",
        help="also train supervised for these comma-separated minutes (SNR loss; the first "
        "budget also with the paper's magnitude loss): the curves of results/bench.json (slow)",
    )
    bench.add_argument(
        "--bf16",
        action="store_true",
        help="--convergence under bf16 autocast (SNR loss only; results/bench.json's "
        "convergence_bf16, or convergence_bf16_<settings> with --lr/--batch-size/--grid-crop)",
    )
    bench.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="--convergence trains each budget once per seed (default: 0)",
    )
    bench.add_argument(
        "--lr",
        type=float,
        help="--convergence with this peak learning rate instead of the preset's (a section of "
        "its own in results/bench.json)",
    )
    bench.add_argument(
        "--batch-size",
        type=int,
        help="--convergence with this many mixtures per step instead of the preset's (a section "
        "of its own)",
    )
    bench.add_argument(
        "--grid-crop",
        action="store_true",
        help="--convergence on training crops that fill the U-Net's grid (wsas train "
        "--grid-crop; a section of its own)",
    )
    bench.add_argument(
        "--long-seconds", type=float, default=600.0, help="length of the long-file test (s)"
    )
    bench.add_argument("--out", default="results/bench.json")
    bench.set_defaults(func=cmd_bench)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` removes its temporary files."""


def _terminate(signum, frame):
    raise Terminated


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
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
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
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
