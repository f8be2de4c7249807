"""Presets: one source of truth for corpus sizes, STFT, model and training budgets.

``smoke`` runs in CI in about a minute; ``tiny`` is the laptop default (2-s training clips, 6.4-s
test clips; the 2-source column, supervised and semi 5 %, and ablations with three seeds each,
sweeps with one); ``small`` the full grid of 21 cells with the deep-conditioning ablation on a
larger corpus (1-s training clips), only the cells its verdicts read with three seeds;
``tiny-var``, ``music`` and ``tiny-long`` are tiny's variants for the headroom check and the
plateau. ``paper`` is the paper's sizes on a GPU (16 kHz, ~8.2 s clips, STFT 1022/256, 7
downsamplings, 32 channels). How long each grid takes is recorded in results/<preset>/.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from wsas.errors import WsasError
from wsas.models.unet import CONDITIONINGS, UNetConfig

CLAUSE_LEVELS = ("floor", "energy")  # TrainConfig.clause_level: magnitude targets for clauses
CRITIC_MODES = ("weak", "semi")  # the regimes with clause estimates and a critic that hears them


@dataclass
class TrainConfig:
    """Everything a training run depends on (stored in its checkpoint; resume checks it)."""

    mode: str  # a regime name (wsas.regimes.REGIMES)
    sources: int = 2  # sources per training mixture
    steps: int = 1000
    # train for this many minutes of wall time (validation included, every sitting counted)
    # instead of ``steps``; the learning-rate schedule then follows the time trained
    minutes: float | None = None
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0
    conditioning: str = "deep"
    clean_fraction: float = 1.0  # supervised / semi: fraction of train clips available clean
    lambda_s: float = 1.0
    lambda_u: float = 1.0
    # supervised, semi's supervised half, mix-and-separate (the others refuse snr): "magnitude"
    # (the paper's weighted L1) or "snr" (waveform)
    recon_loss: str = "magnitude"
    # magnitude losses on spectrograms divided by each example's mean mixture magnitude, so that
    # their weights (weak: recon_weight vs sim_weight) mean the same at any input level; off: the
    # paper's unnormalised magnitudes (the committed results)
    normalise_levels: bool = False
    sim_weight: float = 0.5
    recon_weight: float = 5.0
    # weak / semi: the CLAP critic hears the loudest clap_seconds of each clause estimate
    # (None: all of it, the paper); its cost falls in proportion (wsas bench)
    clap_seconds: float | None = None
    # weak / semi (not in the paper): a magnitude target for clause estimates, which the
    # level-blind critic and the sum-only consistency term leave free: "floor", each keeps at
    # least clause_floor_db of its mixture's energy (a hinge in dB); "energy", their energies add
    # up to their mixture's (|dB|); weighted clause_level_weight; None: none (the paper)
    clause_level: str | None = None
    clause_level_weight: float = 1.0
    clause_floor_db: float = -12.0
    # bf16 autocast of the training forward passes (weights, optimizer and validation stay fp32):
    # None on CUDA only; True on CPU too (faster where the CPU has bf16 instructions, e.g.
    # avx512_bf16: wsas bench), False never
    bf16: bool | None = None
    # weak / semi: the frozen critic hears clause estimates in bf16 autocast (TinyCLAP's log-mel
    # front end stays float32): None where the forward passes run in bf16, or for TinyCLAP where
    # the device computes bf16 natively (wsas.info.native_bf16); True always; False never
    # (float32: the committed grids). Its gradient into the clause estimates keeps its direction
    # within a cosine of 0.999 (tests/test_clap.py)
    critic_bf16: bool | None = None
    # train on random crops whose STFT frames fill the U-Net's grid (UNetConfig.grid_samples), so
    # no step computes padding: tiny's 16384-sample clips (129 frames, padded to 144) train on
    # 16383 (128 frames; paper's clips already fill theirs, 512 frames); validation and tests
    # keep whole clips. Off: the committed grids
    grid_crop: bool = False
    # the two mixtures of a mix-and-separate / weak / MixIT example may share classes (each
    # mixture's own stay distinct): captions then name a class that both mixtures hold, as two
    # real recordings can. Off: every class of an example distinct (the committed grids)
    repeat_classes: bool = False
    val_every: int = 250
    val_mixtures: int = 48
    # "cosine": linear warm-up, then cosine decay; "constant": the same lr throughout
    schedule: str = "cosine"
    warmup: float = 0.05  # fraction of the steps (with minutes: of the budget) spent warming up
    unet: UNetConfig = field(default_factory=UNetConfig)

    def learning_rate(self, step: int, seconds: float = 0.0) -> float:
        """The learning rate of step ``step`` (0-based): a linear warm-up over ``warmup`` of the
        steps, then a cosine decay to 5 % of ``lr`` at the last step (``schedule="cosine"``).
        With ``minutes`` the same shape over the wall time trained so far, ``seconds``: the
        warm-up spans ``warmup`` of the budget (from 1 % of ``lr``), 5 % when it runs out."""
        if self.schedule == "constant":
            return self.lr
        if self.minutes:
            done = seconds / (60 * self.minutes)
            if done < self.warmup:
                return self.lr * max(done / self.warmup, 0.01)
            progress = (done - self.warmup) / (1 - self.warmup)
        else:
            warm = max(1, round(self.warmup * self.steps))
            if step < warm:
                return self.lr * (step + 1) / warm
            progress = (step - warm) / max(1, self.steps - 1 - warm)
        return self.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))

    def clap_window(self, sr: int) -> int | None:
        """Samples at ``sr`` Hz of each clause estimate the critic hears (``clap_seconds``; None:
        all of it); a window shorter than one sample is a one-line error."""
        if not self.clap_seconds:
            return None
        samples = round(self.clap_seconds * sr)
        if samples < 1:
            raise WsasError(
                f"--clap-seconds {self.clap_seconds:g}: shorter than one sample at {sr} Hz"
            )
        return samples

    def __post_init__(self):
        if isinstance(self.unet, dict):  # read back from a checkpoint's JSON
            self.unet = UNetConfig(**self.unet)
        if not 1 <= self.sources <= 6:
            raise WsasError(f"--sources must be between 1 and 6, got {self.sources}")
        if not 0 < self.clean_fraction <= 1:
            raise WsasError(f"--clean-fraction must be in (0, 1], got {self.clean_fraction}")
        if self.schedule not in ("cosine", "constant"):
            raise WsasError(f"schedule must be cosine or constant, got '{self.schedule}'")
        if self.recon_loss not in ("magnitude", "snr"):
            raise WsasError(f"recon_loss must be magnitude or snr, got '{self.recon_loss}'")
        if not 0 <= self.warmup < 1:
            raise WsasError(f"warmup must be a fraction in [0, 1), got {self.warmup}")
        if self.minutes is not None and not (math.isfinite(self.minutes) and self.minutes > 0):
            raise WsasError(f"--minutes must be positive, got {self.minutes}")
        if self.clap_seconds is not None and not self.clap_seconds > 0:
            raise WsasError(f"--clap-seconds must be positive, got {self.clap_seconds}")
        if self.clause_level not in (None, *CLAUSE_LEVELS):
            raise WsasError(
                f"--clause-level must be {' or '.join(CLAUSE_LEVELS)}, got '{self.clause_level}'"
            )
        if self.mode not in CRITIC_MODES:
            for flag, value in (
                ("--clause-level", self.clause_level),
                ("--clap-seconds", self.clap_seconds),
                ("--fp32-critic", self.critic_bf16),
            ):
                if value is not None:
                    raise WsasError(
                        f"{flag}: --mode {self.mode} has no clause estimates (weak, semi)"
                    )
        default = {f.name: f.default for f in fields(self)}
        unused = {  # an option that would change nothing: its flag and the one it needs
            "--clause-level-weight needs --clause-level": self.clause_level is None
            and self.clause_level_weight != default["clause_level_weight"],
            "--clause-floor needs --clause-level floor": self.clause_level != "floor"
            and self.clause_floor_db != default["clause_floor_db"],
        }
        if given := [needs for needs, ignored in unused.items() if ignored]:
            raise WsasError("; ".join(given))
        if not self.clause_level_weight > 0:
            raise WsasError(f"--clause-level-weight must be > 0, got {self.clause_level_weight}")
        if not self.clause_floor_db < 0:
            raise WsasError(
                f"--clause-floor must be below 0 dB (of the mixture), got {self.clause_floor_db}"
            )
        if self.conditioning not in CONDITIONINGS:
            choices = ", ".join(CONDITIONINGS)
            raise WsasError(f"conditioning must be one of {choices}, got '{self.conditioning}'")


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
    convs_per_block: int  # of the encoder
    batch_size: int
    train_steps: int
    lr: float
    clap_steps: int
    test_mixtures: int  # fixed 2-source test mixtures
    val_mixtures: int
    conditioning: str = "deep"  # of the main cells; "late" is cheaper per weak step
    heads: int = 4  # attention heads of cross conditioning
    # the CLAP its method trains with (a wsas.clap.BACKENDS key); the CPU grids pretrain TinyCLAP
    # (``critic``) on their own corpus
    clap: str = "tiny"
    decoder_convs: int = 1  # per decoder block (the per-query part of deep conditioning)
    # every claim cell runs each seed; the unconditional references (PIT, MixIT: oracle
    # assignments, out of the ranking) run the first one only
    seeds: tuple[int, ...] = (0,)
    # "all": every other cell runs each seed too; "claims": only the cells that the headroom
    # check, the claims and the CLAP-term ablation read do, the rest (other sizes, the other
    # conditioning, larger clean fractions, longer training) run the first seed
    seeded_cells: str = "all"
    # the grid (wsas.lab.grid.grid): unsupervised methods at these training-mixture sizes, semi at
    # these clean fractions, the other conditioning as an ablation, and (ablation_steps > 0)
    # mix-and-separate and weak on 4-source mixtures trained that many steps, on the main
    # conditioning and on claim (a)'s (deep where the grid has it)
    unsupervised_sources: tuple[int, ...] = (2, 3, 4)
    semi_fractions: tuple[float, ...] = (0.05, 0.10, 0.25)
    conditioning_ablation: bool = True
    ablation_steps: int = 0
    variation: bool = False  # corpus timbre varies within a class (programs, EQ, room, ...)
    classes: str = "all"  # the corpus's class set: a key of wsas.data.classes.CLASS_SETS
    repeat_classes: bool = False  # TrainConfig.repeat_classes of every cell
    # test clips (samples at sr; None: clip_samples). The separator is convolutional: it trains
    # on short clips and is tested on long ones, where BSS Eval's 512-tap distortion filter is a
    # small part of a clip (51200 samples at 8 kHz: 1 %) and cannot flatter SDR
    test_clip_samples: int | None = None
    clap_ablation: bool = False  # weak with the CLAP term switched off (sim_weight 0), every seed
    # weak with the CLAP critic hearing the loudest this-many seconds of each clause estimate
    # (TrainConfig.clap_seconds: a cheaper step), every seed: what the saving costs
    clap_seconds_ablation: tuple[float, ...] = ()
    # the grid's TinyCLAP (a wsas.clap.tiny.SIZES key): the critic of weak and semi, and the text
    # tower that embeds every cell's queries
    critic: str = "full"
    # weak with a TinyCLAP of each of these other sizes, pretrained on the grid's corpus (leanaudio
    # into the text space of its full one), every seed: what the grid's choice of critic costs
    # or saves
    critic_ablation: tuple[str, ...] = ()
    # weak with each of these magnitude targets for its clause estimates (TrainConfig.clause_level:
    # not in the paper), every seed: what it adds
    clause_level_ablation: tuple[str, ...] = ()
    # sweeps on validation, first seed, the preset's budget: weak's CLAP-term weight (beside
    # TrainConfig.sim_weight) and mix-and-separate's learning rate (beside ``lr``)
    sweep_sim_weights: tuple[float, ...] = ()
    sweep_lrs: tuple[float, ...] = ()
    # semi's supervised-term weight lambda_s (beside TrainConfig.lambda_s) at the smallest clean
    # fraction: that term is ~4 % of semi's objective at weight 1
    sweep_semi_weights: tuple[float, ...] = ()
    # > 0: supervised and mix-and-separate (2-source) also trained this many steps, first seed:
    # the headroom check at a budget nearer the plateau
    headroom_steps: int = 0

    def __post_init__(self):
        if self.seeded_cells not in ("all", "claims"):
            raise WsasError(f"seeded_cells must be all or claims, got '{self.seeded_cells}'")

    @property
    def clip_seconds(self) -> float:
        return self.clip_samples / self.sr

    @property
    def test_samples(self) -> int:
        """Length of a test clip in samples at ``sr``."""
        return self.test_clip_samples or self.clip_samples

    def to_dict(self) -> dict:
        return asdict(self)

    def unet(self, conditioning: str | None = None, cond_dim: int = 128) -> UNetConfig:
        """The separator of this preset (``conditioning`` defaults to the preset's)."""
        return UNetConfig(
            n_fft=self.n_fft,
            hop=self.hop,
            channels=self.unet_channels,
            levels=self.unet_levels,
            convs_per_block=self.convs_per_block,
            decoder_convs=self.decoder_convs,
            cond_dim=cond_dim,
            conditioning=conditioning or self.conditioning,
            heads=self.heads,
        )

    def train_config(
        self, mode: str, conditioning: str | None = None, steps: int | None = None, **overrides
    ) -> TrainConfig:
        """A :class:`TrainConfig` with this preset's model and budget; ``overrides`` win."""
        conditioning = conditioning or self.conditioning
        steps = steps or self.train_steps
        return TrainConfig(
            **{
                "mode": mode,
                "steps": steps,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "conditioning": conditioning,
                "val_every": max(1, steps // 4),
                "val_mixtures": self.val_mixtures,
                "unet": self.unet(conditioning),
                "repeat_classes": self.repeat_classes,
                **{k: v for k, v in overrides.items() if v is not None},
            }
        )


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
        unsupervised_sources=(2,),
        semi_fractions=(0.05,),
        conditioning_ablation=False,
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
        seeds=(0, 1, 2),
        unsupervised_sources=(2,),
        semi_fractions=(0.05,),
        conditioning_ablation=False,
        test_clip_samples=51200,
        clap_ablation=True,
        sweep_sim_weights=(2.0, 8.0),
        sweep_lrs=(1e-3, 4e-3),
        sweep_semi_weights=(4.0, 16.0),
        headroom_steps=1200,
        clap_seconds_ablation=(1.024,),
        critic_ablation=("lean", "leanaudio"),
        clause_level_ablation=("floor", "energy"),
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
        seeds=(0, 1, 2),
        seeded_cells="claims",
        ablation_steps=900,
        test_clip_samples=51200,
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
        decoder_convs=2,
        conditioning="cross",
        heads=8,
        clap="laion",
    ),
}

# headroom presets (issue 18): tiny's sizes on a corpus whose timbre varies within each class,
# over every class ("tiny-var") or over the MUSIC-like instruments only ("music")
# (one seed, no CLAP-term ablation or sweeps: the headroom check only, at the preset's steps and
# at tiny's headroom_steps)
_NO_SWEEPS = dict(
    sweep_sim_weights=(),
    sweep_lrs=(),
    sweep_semi_weights=(),
    clap_seconds_ablation=(),
    critic_ablation=(),
    clause_level_ablation=(),
)
_HEADROOM = dict(variation=True, seeds=(0,), clap_ablation=False, **_NO_SWEEPS)
PRESETS["tiny-var"] = replace(PRESETS["tiny"], name="tiny-var", **_HEADROOM)
PRESETS["music"] = replace(PRESETS["tiny"], name="music", classes="music", **_HEADROOM)
# the testbed (issue 41): music, with the two mixtures of a mix-and-separate example free to
# share instruments (each mixture's own distinct), so that a caption may name a class both
# mixtures hold, as two real recordings can: mix-and-separate cannot tell which mixture's
# instrument its query means, more often the more sources a mixture holds (11 classes, 4
# sources: 89 % of examples; 2 sources: 35 %). It is the search's closest setting so far, not
# yet a testbed where the premise holds (results/testbed-search)
PRESETS["testbed"] = replace(PRESETS["music"], name="testbed", repeat_classes=True)
# tiny's claim grid trained nearer its plateau (1200 steps; results/tiny-long says how near):
# every claim cell and the CLAP-term ablation with three seeds, no sweeps. It takes hours on a
# CPU: run it over several sittings with --resume (cells are written as they finish)
PRESETS["tiny-long"] = replace(
    PRESETS["tiny"],
    name="tiny-long",
    train_steps=1200,
    headroom_steps=0,
    **_NO_SWEEPS,
)


def get_preset(name: str) -> Preset:
    """Look a preset up by name; unknown names raise a WsasError listing the known ones."""
    if name not in PRESETS:
        raise WsasError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
