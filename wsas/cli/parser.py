"""The argument parser of ``wsas``: one small function per command."""

from __future__ import annotations

import argparse

from wsas import __version__
from wsas.cli import commands

DEVICE_HELP = "cpu, cuda or cuda:N (default: cuda when available)"
# `wsas train`'s flags that set TrainConfig fields: (flag, field, argparse options). Unset flags
# stay None, so the preset's value (or TrainConfig's default) applies.
TRAIN_FIELDS: tuple[tuple[str, str, dict], ...] = (
    ("--sources", "sources", dict(type=int, help="sources per training mixture (default 2)")),
    ("--steps", "steps", dict(type=int, help="training steps (default: the preset's)")),
    ("--minutes", "minutes", dict(
        type=float,
        help="train for this much wall time instead of --steps (validation included); the "
        "learning-rate schedule follows the time trained",
    )),
    ("--batch-size", "batch_size", dict(type=int)),
    ("--lr", "lr", dict(type=float, help="peak learning rate (default: the preset's)")),
    ("--seed", "seed", dict(type=int, help="default 0")),
    ("--conditioning", "conditioning", dict(
        choices=["deep", "late", "cross"], help="FiLM inside the U-Net (deep), cross-attention "
        "to the query's token states at its inner levels (cross, the paper's) or a "
        "query-weighted output head (late); default: the preset's",
    )),
    ("--clean-fraction", "clean_fraction", dict(
        type=float, help="supervised/semi: the share of training clips available clean"
    )),
    ("--recon-loss", "recon_loss", dict(
        choices=["magnitude", "snr"],
        help="supervised, semi's supervised half, mix-and-separate: the paper's magnitude L1 "
        "(default) or waveform SNR",
    )),
    ("--normalise-levels", "normalise_levels", dict(
        action="store_const", const=True,
        help="divide the magnitude losses' spectrograms by each example's mean mixture "
        "magnitude, so loss weights mean the same at any level",
    )),
    ("--clap-seconds", "clap_seconds", dict(
        type=float, help="weak/semi: the critic hears the loudest this-many seconds of each "
        "clause estimate (default: all of it, as in the paper)",
    )),
    ("--clause-level", "clause_level", dict(
        choices=["floor", "energy"], help="weak/semi (not in the paper): a magnitude target for "
        "clause estimates: each keeps at least --clause-floor of its mixture's energy (floor), "
        "or their energies add up to their mixture's (energy)",
    )),
    ("--clause-level-weight", "clause_level_weight", dict(type=float, help="default 1")),
    ("--clause-floor", "clause_floor_db", dict(
        type=float, metavar="DB", help="--clause-level floor: dB below the mixture (default -12)"
    )),
    ("--bf16", "bf16", dict(
        action="store_const", const=True, help="bf16 autocast on CPU too (always on CUDA): "
        "faster on a CPU with bf16 instructions, slower on one without (see `wsas bench`)",
    )),
    ("--fp32-critic", "critic_bf16", dict(
        action="store_const", const=False, help="weak/semi: the critic hears clause estimates "
        "in float32 (default for TinyCLAP: bf16 where the device computes it natively)",
    )),
    ("--grid-crop", "grid_crop", dict(
        action="store_const", const=True, help="train on random crops whose STFT frames fill "
        "the U-Net's grid, so no step computes padding",
    )),
)  # fmt: skip


class OneLineParser(argparse.ArgumentParser):
    """Usage errors (unknown option, invalid choice) as one line and exit code 2, like every
    other user error."""

    def error(self, message: str):
        self.exit(2, f"wsas: error: {message} (see {self.prog} --help)\n")


def _presets() -> list[str]:
    from wsas.presets import PRESETS

    return list(PRESETS)


def _models(sub) -> None:
    p = sub.add_parser("models", help="the shipped pretrained models and their cards")
    p.add_argument("--json", action="store_true", help="print the cards as JSON")
    p.add_argument(
        "--remake", action="store_true", help="train the shipped models again from scratch and "
        "rewrite wsas/pretrained (their float16 weights are what the cards score)",
    )  # fmt: skip
    p.add_argument("--preset", choices=_presets(), help="with --remake (default: tiny)")
    p.add_argument("--work", help="with --remake: data, CLAP and runs (default: work/)")
    p.add_argument("--seed", type=int, help="with --remake (default: 0)")
    p.add_argument("--only", metavar="MODES", help="with --remake: comma-separated regimes")
    p.set_defaults(func=commands.cmd_models)


def _parse(sub) -> None:
    p = sub.add_parser("parse", help="split a caption into one clause per sound source")
    p.add_argument("caption", nargs="*", help="the caption (quote it)")
    p.add_argument("--file", help="a CSV of captions: report the distribution of source counts")
    p.add_argument("--column", default="caption", help="caption column of --file")
    p.set_defaults(func=commands.cmd_parse)


def _data(sub) -> None:
    data = sub.add_parser("data", help="build the embedded corpus")
    p = data.add_subparsers(dest="data_command", required=True).add_parser(
        "build", help="render single-source clips from a General MIDI soundfont"
    )
    p.add_argument("--preset", default="tiny", choices=_presets())
    p.add_argument("--soundfont", help="a General MIDI .sf2 (default: pretty_midi's)")
    p.add_argument("--out", help="output folder (default: data/PRESET)")
    p.add_argument("--sr", type=int, help="sample rate in Hz (default: the preset's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=int, help="rendering processes (default: every core)")
    p.set_defaults(func=commands.cmd_data_build)


def _clap(sub) -> None:
    from wsas.clap import BACKENDS
    from wsas.clap.tiny import SIZES

    clap = sub.add_parser("clap", help="the CLAP models").add_subparsers(
        dest="clap_command", required=True
    )
    pre = clap.add_parser("pretrain", help="train TinyCLAP on a corpus's clap split")
    pre.add_argument("--data", required=True, help="corpus folder (wsas data build)")
    pre.add_argument("--out", help="checkpoint (default: DATA/tinyclap[-SIZE].safetensors)")
    pre.add_argument("--preset", default="tiny", choices=_presets())
    pre.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument(
        "--size", choices=list(SIZES), help="full, lean (a cheaper critic, poorer queries) or "
        "leanaudio (lean's audio tower in the full one's text space); default: the preset's",
    )  # fmt: skip
    pre.set_defaults(func=commands.cmd_clap_pretrain)
    for name, helptext, func in (
        ("eval", "zero-shot accuracy and recall@1", commands.cmd_clap_eval),
        ("score", "similarity of audio files to texts", commands.cmd_clap_score),
    ):
        p = clap.add_parser(name, help=helptext)
        p.add_argument("--backend", default="tiny", choices=list(BACKENDS))
        p.add_argument("--checkpoint", help="CLAP checkpoint (tiny: DATA/tinyclap.safetensors)")
        if name == "eval":
            p.add_argument("--data", required=True)
            p.add_argument("--split", default="test")
            p.add_argument("--json-out", help="also write the report to this JSON file")
        else:
            p.add_argument("audio", nargs="+", help="audio file(s)")
            p.add_argument("--text", "-t", action="append", required=True, help="a text (repeat)")
        p.set_defaults(func=func)


def _train(sub) -> None:
    from wsas.clap import BACKENDS
    from wsas.regimes import REGIMES

    p = sub.add_parser("train", help="train a separator")
    p.add_argument("--mode", required=True, choices=list(REGIMES), help="the training regime")
    p.add_argument(
        "--data", help="embedded corpus folder (training clips, validation pairs, TinyCLAP), or "
        "a labelled layout music:DIR / vggsound:DIR",
    )  # fmt: skip
    p.add_argument(
        "--recordings", metavar="LAYOUT:FOLDER", help="train the weak regimes on captioned "
        "recordings instead (layouts: audiocaps, clotho, vggsound, music)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="run folder (checkpoint, log.csv, train.json)")
    p.add_argument("--preset", default="tiny", choices=_presets(), help="sizes and budget")
    for flag, field, options in TRAIN_FIELDS:
        p.add_argument(flag, dest=field, **options)
    p.add_argument("--clap", default="tiny", choices=list(BACKENDS))
    p.add_argument("--clap-checkpoint")
    p.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.safetensors")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the U-Net (pays on GPUs; on CPU "
        "it is slower: see `wsas bench`)",
    )  # fmt: skip
    p.set_defaults(func=commands.cmd_train)


def _evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="every SDR the field reports, on the fixed test mixtures")
    p.add_argument("run", help="a run folder or checkpoint")
    p.add_argument("--data", help="corpus folder or music:DIR / vggsound:DIR")
    p.add_argument(
        "--reference-free", metavar="FOLDER", help="CLAPScore on FOLDER/captions.csv "
        "(file,caption): no clean references needed",
    )  # fmt: skip
    p.add_argument(
        "--dcase", metavar="FOLDER", help="the DCASE 2024 task 9 synthetic validation "
        "(FOLDER/lass_synthetic_validation.csv and its clips), scored as its evaluator does",
    )  # fmt: skip
    p.add_argument("--preset", default="tiny", choices=_presets())
    p.add_argument("--pairs", type=int, help="test mixtures (default: the preset's)")
    p.add_argument("--backend", default="fast", choices=["fast", "mir_eval"])
    p.add_argument(
        "--drop-silent", action="store_true", help="leave mixtures with a near-silent estimate "
        "(energy 60 dB or more below the mixture's) out of the means, as the authors average",
    )  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_evaluate)


def _separate(sub) -> None:
    p = sub.add_parser("separate", help="separate recordings by text queries or a caption")
    p.add_argument("mix", nargs="+", help="audio file(s): any format, rate, channels, length")
    p.add_argument("-q", "--query", action="append", help="a text query (repeatable)")
    p.add_argument(
        "-Q", "--query-audio", dest="examples", action="append", metavar="EXAMPLE", help="a "
        "recording of a wanted sound: its stem is named like_<file name> (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--except", dest="excepts", action="append", metavar="QUERY", help="also write "
        "everything but this sound: the mixture minus its estimate (repeatable)",
    )  # fmt: skip
    p.add_argument("--caption", help="one stem per clause, plus the residual and a manifest")
    p.add_argument("--checkpoint", help="a run folder or checkpoint (default: --model)")
    p.add_argument("--model", default="weak", help="a shipped model (wsas models; default: weak)")
    p.add_argument("-o", "--out", default="separated", help="output folder (default: separated/)")
    p.add_argument("--format", default="wav", choices=["wav", "flac"])
    p.add_argument("--residual", action="store_true", help="also write mixture minus estimates")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no notes")
    p.add_argument("--verbose", action="store_true", help="also say how inputs are resampled")
    p.add_argument("--device", help=DEVICE_HELP)
    p.set_defaults(func=commands.cmd_separate)


def _reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="the paper's Tables 1 and 2 end to end")
    p.add_argument("--preset", default="tiny", choices=_presets())
    p.add_argument("--work", default="work", help="data, CLAP and runs (default: work/)")
    p.add_argument("--results", default="results", help="result files (default: results/)")
    p.add_argument("--only", action="append", help="train only cells of this mode (repeatable)")
    p.add_argument(
        "--sources", type=int, nargs="+", default=[], help="also train the unsupervised "
        "methods on these mixture sizes (e.g. 3 4)",
    )  # fmt: skip
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[], help="train these seeds instead of the "
        "preset's (verdicts then rest on them)",
    )  # fmt: skip
    p.add_argument(
        "--resume", action="store_true", help="keep finished cells in RESULTS/PRESET/cells and "
        "continue half-trained runs (default: train every cell)",
    )  # fmt: skip
    p.add_argument("--jobs", type=int, default=1, help="train this many cells at once")
    p.set_defaults(func=commands.cmd_reproduce)


def _bench(sub) -> None:
    p = sub.add_parser("bench", help="speed and memory on this machine (results/bench.json)")
    p.add_argument("--preset", default="tiny", choices=_presets())
    p.add_argument(
        "--only", help="comma-separated sections of steps, shared_encoder, paper_step, "
        "inference, bss_eval (default: all; '' for none, e.g. with --convergence)",
    )  # fmt: skip
    p.add_argument("--against", metavar="REV", help="also time the steps of git revision REV")
    p.add_argument(
        "--convergence", metavar="MINUTES", help="also train supervised for these "
        "comma-separated wall-clock budgets (the curves of the performance chapter; slow)",
    )  # fmt: skip
    p.add_argument("--bf16", action="store_true", help="--convergence under bf16 autocast")
    p.add_argument("--seeds", type=int, nargs="+", help="--convergence: one run per seed")
    p.add_argument("--lr", type=float, help="--convergence with this peak learning rate")
    p.add_argument("--batch-size", type=int, help="--convergence with this batch size")
    p.add_argument("--grid-crop", action="store_true", help="--convergence on grid crops")
    p.add_argument("--long-seconds", type=float, default=600.0, help="long-file test (s)")
    p.add_argument("--out", default="results/bench.json")
    p.set_defaults(func=commands.cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="wsas", description="Weakly-supervised text-queried separation.")
    parser.add_argument("--version", action="version", version=f"wsas {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="versions, device, CLAP backends")
    info.add_argument("--clap-checkpoint", help="a LAION-CLAP weights file to look for")
    info.set_defaults(func=commands.cmd_info)
    for add in (_models, _parse, _data, _clap, _train, _evaluate, _separate, _reproduce, _bench):
        add(sub)
    return parser
