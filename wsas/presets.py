"""Presets: one source of truth for corpus sizes, STFT, model and training budgets.

``smoke`` runs in CI in about a minute, ``tiny`` is the laptop default (the 2-source column and
semi 5 %, about half an hour on 2 CPU cores), ``small`` the full grid of 21 cells with the
deep-conditioning ablation on a larger corpus and 200 test mixtures, plus mix-and-separate and
weak on 4-source mixtures trained 3x longer; to fit in about 1.5 hours on 2 CPU cores
(``--jobs 2``) its clips are 1 s and it runs one seed. ``paper`` is the
paper's sizes on a GPU (16 kHz, ~8.2 s clips, STFT 1022/256, 7 downsamplings, 32 channels, deep
conditioning, three seeds).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Preset:
    name: str
    sr: int  # Hz
    clip_samples: int
    clips_per_class: dict  # split -> clips of each class; "clap" pretrains TinyCLAP only
    n_fft: int
    hop: int
    unet_channels: int  # channels of the first U-Net level
    unet_levels: int  # number of downsamplings
    convs_per_block: int
    batch_size: int
    train_steps: int
    lr: float
    clap_steps: int
    test_mixtures: int  # fixed 2-source test mixtures
    val_mixtures: int
    conditioning: str = "deep"  # of the main cells; "late" is ~3x cheaper per weak step on CPU
    seeds: tuple[int, ...] = (0,)
    ablation_steps: int = (
        0  # > 0: also train mix-and-separate and weak on 4-source mixtures this many steps
    )
    variation: bool = False  # corpus timbre varies within a class (programs, EQ, room, ...)
    classes: str = "all"  # the corpus's class set: a key of wsas.data.classes.CLASS_SETS

    @property
    def clip_seconds(self) -> float:
        return self.clip_samples / self.sr

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        "smoke",
        8000,
        8192,
        {"clap": 12, "train": 12, "val": 2, "test": 3},
        n_fft=510,
        hop=128,
        unet_channels=8,
        unet_levels=3,
        convs_per_block=1,
        batch_size=8,
        train_steps=40,
        lr=3e-3,
        clap_steps=250,
        test_mixtures=24,
        val_mixtures=12,
        conditioning="late",
    ),
    "tiny": Preset(
        "tiny",
        8000,
        16384,
        {"clap": 40, "train": 60, "val": 4, "test": 8},
        n_fft=510,
        hop=128,
        unet_channels=8,
        unet_levels=4,
        convs_per_block=2,
        batch_size=16,
        train_steps=300,
        lr=2e-3,
        clap_steps=600,
        test_mixtures=120,
        val_mixtures=48,
        conditioning="late",
    ),
    "small": Preset(
        "small",
        8000,
        8192,
        {"clap": 60, "train": 120, "val": 6, "test": 12},
        n_fft=510,
        hop=128,
        unet_channels=8,
        unet_levels=4,
        convs_per_block=2,
        batch_size=16,
        train_steps=300,
        lr=2e-3,
        clap_steps=1000,
        test_mixtures=200,
        val_mixtures=64,
        conditioning="late",
        ablation_steps=900,
    ),
    "paper": Preset(
        "paper",
        16000,
        131070,
        {"clap": 200, "train": 500, "val": 10, "test": 20},
        n_fft=1022,
        hop=256,
        unet_channels=32,
        unet_levels=7,
        convs_per_block=2,
        batch_size=16,
        train_steps=100_000,
        lr=1e-4,
        clap_steps=20_000,
        test_mixtures=500,
        val_mixtures=100,
        seeds=(0, 1, 2),
    ),
}

# headroom presets (issue 18): tiny's sizes on a corpus whose timbre varies within each class,
# over every class ("tiny-var") or over the MUSIC-like instruments only ("music")
PRESETS["tiny-var"] = replace(PRESETS["tiny"], name="tiny-var", variation=True)
PRESETS["music"] = replace(PRESETS["tiny"], name="music", variation=True, classes="music")


def get_preset(name: str) -> Preset:
    """Look a preset up by name; unknown names raise a WsasError listing the known ones."""
    from wsas.errors import WsasError

    if name not in PRESETS:
        raise WsasError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
