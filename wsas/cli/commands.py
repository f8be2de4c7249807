"""The commands of ``wsas``: each checks its arguments, calls the library and reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wsas.errors import WsasError


def note(message: str) -> None:
    """One line on stderr that is not an error."""
    print(f"wsas: note: {message}", file=sys.stderr)


def device(name: str | None) -> str | None:
    """A ``--device`` choice checked against this machine (None: the default device)."""
    from wsas.info import check_device

    return None if name is None else check_device(name)


def default_clap(data: str) -> str:
    return str(Path(data) / "tinyclap.safetensors")


def cmd_info(args: argparse.Namespace) -> None:
    from wsas.info import machine_info

    print(json.dumps(machine_info(args.clap_checkpoint), indent=2))


def cmd_data_build(args: argparse.Namespace) -> None:
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
        preset, out, args.soundfont, args.sr,
        progress=not args.quiet, workers=args.workers,
    )  # fmt: skip
    print(f"wrote {meta} ({time.time() - started:.1f} s)")


def cmd_parse(args: argparse.Namespace) -> None:
    from wsas.captions import parse, source_counts

    if args.file is None:
        if not args.caption:
            raise WsasError("give a caption or --file CAPTIONS.csv")
        print(json.dumps(parse(" ".join(args.caption))))
        return
    from wsas.data.datasets import read_table

    captions = [r.get(args.column) or "" for r in read_table(args.file, (args.column,))]
    if not any(c.strip() for c in captions):
        raise WsasError(f"{args.file}: no captions in column '{args.column}'")
    print(json.dumps(source_counts(captions), indent=2))


def cmd_clap_pretrain(args: argparse.Namespace) -> None:
    from wsas.lab.reproduce import pretrain_critic, size_checkpoint, text_donor
    from wsas.presets import get_preset

    preset = get_preset(args.preset)
    size = args.size or preset.critic
    # the preset's size is the critic training loads; another size goes beside it, not over it
    grid_ckpt = Path(default_clap(args.data))
    out = Path(args.out) if args.out else size_checkpoint(grid_ckpt, size, preset.critic)
    donor = text_donor(grid_ckpt, size, preset.critic)  # learns into the text space of that one
    if donor is not None and not donor.is_file():
        raise WsasError(
            f"a {size} TinyCLAP learns into the text space of {donor}: pretrain it first"
        )
    report = pretrain_critic(
        preset, Path(args.data), out, size, True, donor, steps=args.steps, seed=args.seed
    )
    print(json.dumps({**report, "checkpoint": str(out)}, indent=2))


def cmd_clap_eval(args: argparse.Namespace) -> None:
    from wsas.clap import load_clap
    from wsas.clap.pretrain import evaluate_clap
    from wsas.results import write_json

    checkpoint = args.checkpoint or (default_clap(args.data) if args.backend == "tiny" else None)
    report = {
        "backend": args.backend,
        "checkpoint": checkpoint,
        **evaluate_clap(load_clap(args.backend, checkpoint), args.data, args.split),
    }
    if args.json_out:
        write_json(args.json_out, report)
    print(json.dumps(report, indent=2))


def cmd_clap_score(args: argparse.Namespace) -> None:
    from wsas.audio import load
    from wsas.clap import load_clap
    from wsas.results import json_text
    from wsas.separate import check_queries

    texts = check_queries(args.text)
    clap = load_clap(args.backend, args.checkpoint)
    for path in args.audio:
        wave, sr = load(path)
        sims = clap.similarity(wave[None], sr, texts)[0]
        scores = {t: round(float(s), 4) for t, s in zip(texts, sims)}
        print(json_text({"audio": path, "scores": scores}))


def cmd_train(args: argparse.Namespace) -> None:
    device(args.device)
    from wsas.clap import load_clap
    from wsas.cli.parser import TRAIN_FIELDS
    from wsas.data.datasets import training_sets
    from wsas.presets import get_preset
    from wsas.train import Trainer

    if args.minutes is not None and args.steps is not None:
        raise WsasError("give --steps or --minutes, not both")
    preset = get_preset(args.preset)
    fields = {field: getattr(args, field) for _, field, _ in TRAIN_FIELDS}
    config = preset.train_config(args.mode, **fields)
    train, val, corpus = training_sets(
        args.data, args.recordings, preset.sr, preset.clip_samples, config.seed
    )
    if args.clap == "tiny" and not (args.clap_checkpoint or corpus):
        raise WsasError("TinyCLAP needs --clap-checkpoint when --data is not an embedded corpus")
    checkpoint = args.clap_checkpoint or (default_clap(args.data) if args.clap == "tiny" else None)
    clap = load_clap(args.clap, checkpoint)
    trainer = Trainer(config, clap, args.out, train, val, device=args.device, compile=args.compile)
    print(json.dumps(trainer.run(resume=args.resume)))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from wsas.bundle import checkpoint_of
    from wsas.evaluate import dcase_evaluate, evaluate_run, reference_free
    from wsas.presets import get_preset
    from wsas.results import json_text

    chosen = [f for f, v in (("--data", args.data), ("--reference-free", args.reference_free),
                             ("--dcase", args.dcase)) if v]  # fmt: skip
    if len(chosen) > 1:
        raise WsasError(f"give one of {', '.join(chosen)}, not {len(chosen)}")
    if args.drop_silent and not args.data:
        raise WsasError("--drop-silent goes with --data (the test mixtures)")
    if args.reference_free:
        report = reference_free(checkpoint_of(args.run), args.reference_free)
        print(
            json_text(report, indent=2)
            if args.json
            else f"{report['files']} files: CLAPScore {report['clap_score']:.3f} (mixture "
            f"{report['clap_score_mixture']:.3f}, "
            f"improvement {report['clapscore_improvement']:+.3f})"
        )
        return
    if args.dcase:
        r = dcase_evaluate(checkpoint_of(args.run), args.dcase)
        print(
            json_text(r, indent=2)
            if args.json
            else f"DCASE 2024 task 9 evaluator's metrics on {r['mixtures']} mixtures: SNR-style "
            f"SDR {r['snr_sdr']:.2f} dB, SNR-SDRi {r['snr_sdri']:.2f}, SI-SDR {r['si_sdr']:.2f}"
        )
        return
    if not args.data:
        raise WsasError(
            "give --data CORPUS (reference-based scores), --reference-free FOLDER or --dcase FOLDER"
        )
    if args.pairs is not None and args.pairs < 1:
        raise WsasError(f"--pairs {args.pairs}: give a positive number of test mixtures")
    preset = get_preset(args.preset)
    pairs = args.pairs or preset.test_mixtures
    r = evaluate_run(
        args.run, args.data, pairs, args.backend, clip_samples=preset.test_samples,
        drop_silent=args.drop_silent,
    )  # fmt: skip
    print(json_text(r, indent=2) if args.json else evaluation_line(r))


def evaluation_line(r: dict) -> str:
    """The text form of an :func:`wsas.evaluate.evaluate_run` report: every metric, named."""
    silent = r["silent_pairs"]
    if r["dropped_silent"]:
        kept = f"{r['pairs']} pairs ({silent} with a near-silent estimate dropped)"
    else:
        kept = f"{r['pairs']} pairs" + (f" ({silent} with a near-silent estimate)" * bool(silent))
    return (
        f"{r['mode']} x{r['sources']} ({r['conditioning']}) on {kept}:\n"
        f"  BSS Eval v3 (the paper's): SDR {r['sdr']:.2f} dB, SDRi {r['sdri']:.2f}, "
        f"SIR {r['sir']:.2f}, SAR {r['sar']:.2f}\n"
        f"  SI-SDR {r['si_sdr']:.2f} dB, SI-SDRi {r['si_sdri']:.2f}\n"
        f"  SNR-style SDR (AudioSep, DCASE 2024 task 9) {r['snr_sdr']:.2f} dB, "
        f"SNR-SDRi {r['snr_sdri']:.2f}\n"
        f"  level error {r['level_db']:+.2f} dB, CLAPScore +{r['clapscore_improvement']:.3f}"
    )


def cmd_reproduce(args: argparse.Namespace) -> None:
    from wsas.lab.reproduce import reproduce

    summary = reproduce(
        args.preset, work=args.work, results=args.results, only=args.only,
        sources=tuple(args.sources), jobs=args.jobs, resume=args.resume, seeds=tuple(args.seeds),
    )  # fmt: skip
    keys = ("table1", "table2", "claims", "train_seconds_all_cells")
    print(json.dumps({k: summary[k] for k in keys}, indent=2))


def cmd_separate(args: argparse.Namespace) -> None:
    device(args.device)
    from wsas.separate import Separator, separate_files

    def load() -> Separator:
        if args.checkpoint:
            sep = Separator.from_checkpoint(args.checkpoint, args.device)
            used = f"the checkpoint {args.checkpoint} ({sep.config['train']['mode']}, "
        else:
            sep = Separator.from_pretrained(args.model, args.device)
            used = f"the shipped model '{args.model}' (`wsas models` describes it; "
        if not args.quiet:
            note(f"using {used}{sep.sample_rate} Hz)")
        return sep

    plan = separate_files(
        load, args.mix, args.query, args.caption, args.out, args.format, args.residual,
        args.overwrite, progress=not args.quiet, note=note,
        verbose=args.verbose, excepts=args.excepts, examples=args.examples,
    )  # fmt: skip
    for item in plan:
        for name, file in item.stems.items():
            print(f"{name}\t{Path(args.out) / file}")
    files, manifests = sum(len(item.stems) for item in plan), len(plan)
    if not args.quiet:
        note(
            f"wrote {files} audio file{'s' * (files != 1)} and {manifests} "
            f"manifest{'s' * (manifests != 1)} to {args.out}"
        )


def cmd_models(args: argparse.Namespace) -> None:
    from wsas.pretrained import cards

    options = {"--preset": args.preset, "--work": args.work, "--seed": args.seed}
    given = [k for k, v in {**options, "--only": args.only}.items() if v is not None]
    if not args.remake and given:
        raise WsasError(f"{', '.join(given)} only go with --remake")
    if args.remake:
        from wsas.lab.shipping import SHIPPED, remake_shipped
        from wsas.presets import get_preset

        modes = tuple(m.strip() for m in args.only.split(",")) if args.only else SHIPPED
        preset = get_preset(args.preset or "tiny")
        remake_shipped(preset, args.work or "work", modes, seed=args.seed or 0)
    shipped = cards()
    if args.json:
        print(json.dumps(shipped, indent=2))
        return
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


def cmd_bench(args: argparse.Namespace) -> None:
    from wsas.lab.bench import bench_command

    print(bench_command(**{k: v for k, v in vars(args).items() if k not in ("func", "command")}))
