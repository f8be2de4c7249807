"""The grid of a preset: its cells, each a regime and seed with the TrainConfig fields it
changes, named after those changes (results/<preset>/cells/<name>.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from wsas.clap.tiny import SIZES as TINY_SIZES
from wsas.errors import WsasError
from wsas.presets import Preset


@dataclass(frozen=True)
class Cell:
    """One training run of a grid: a regime and a seed, and the TrainConfig fields it sets
    (None: the preset's value). Every field but ``critic`` (the TinyCLAP size that criticises
    and queries it) is a :class:`wsas.presets.TrainConfig` field of the same name."""

    mode: str
    sources: int = 2
    clean_fraction: float = 1.0
    conditioning: str = "deep"
    seed: int = 0
    steps: int | None = None  # None: the preset's train_steps (the longer-training ablation)
    sim_weight: float | None = None  # 0 switches the CLAP term off (ablation)
    lr: float | None = None  # the learning-rate sweep sets it
    lambda_s: float | None = None  # semi's supervised-term weight (sweep)
    clap_seconds: float | None = None  # None: the CLAP critic hears all of each clause estimate
    critic: str | None = None  # None: the grid's TinyCLAP (Preset.critic); else another size
    clause_level: str | None = None  # a magnitude target for clauses

    @classmethod
    def from_report(cls, fields_: dict) -> Cell:
        """The cell a report's ``"cell"`` dict describes (fields it lacks take their defaults)."""
        return cls(**{f.name: fields_[f.name] for f in fields(cls) if f.name in fields_})

    def overrides(self) -> dict:
        """The TrainConfig fields this cell sets (``critic`` is not one; None ones are not)."""
        return {k: v for k, v in asdict(self).items() if v is not None and k != "critic"}

    @property
    def position(self) -> str:
        """Its place in the grid: the name without the seed (the seeds of a place are paired)."""
        shown = "".join(
            show(value)
            for field_, show in SHOWN.items()
            if (value := getattr(self, field_)) != CELL_DEFAULTS[field_]
        )
        clean = f"-clean{round(self.clean_fraction * 100)}" if self.clean_fraction < 1 else ""
        longer = f"-{self.steps}steps" if self.steps else ""
        return f"{self.mode}-x{self.sources}{clean}-{self.conditioning}{shown}{longer}"

    @property
    def name(self) -> str:
        """Unique in a grid and stable across versions: results/<preset>/cells/<name>.json."""
        longer = f"-{self.steps}steps" if self.steps else ""
        return f"{self.position.removesuffix(longer)}-s{self.seed}{longer}"


# how a field that differs from its default shows in a cell's name, in name order; a new
# ablated field needs one entry here (and a field above)
SHOWN = {
    "sim_weight": lambda v: f"-sim{v:g}",
    "lr": lambda v: f"-lr{v:g}",
    "lambda_s": lambda v: f"-ls{v:g}",
    "clap_seconds": lambda v: f"-clap{v:g}s",
    "critic": lambda v: f"-{v}clap",
    "clause_level": lambda v: f"-{v}level",
}
CELL_DEFAULTS = {f.name: f.default for f in fields(Cell)}


def grid(preset: Preset, sources: tuple[int, ...] = ()) -> list[Cell]:
    """The cells a preset runs, from its grid fields: supervised (100 % and 5 % clean) and PIT;
    MixIT, mix-and-separate and weak at each training-mixture size of
    ``preset.unsupervised_sources`` (plus ``sources``); mix-and-separate and weak with the other
    conditioning (``conditioning_ablation``); semi at each of ``semi_fractions``; with
    ``clap_ablation``, weak on 2-source mixtures without its CLAP term; weak with its critic
    hearing each of ``clap_seconds_ablation`` seconds of a clause estimate; weak with a TinyCLAP of
    each size of ``critic_ablation``; weak with each magnitude target for its clause estimates of
    ``clause_level_ablation``; with ``ablation_steps``,
    mix-and-separate and weak on 4-source mixtures trained that long, on the main conditioning
    and on claim (a)'s; and the sweeps on
    validation (first seed): weak at each of ``sweep_sim_weights``, mix-and-separate at each of
    ``sweep_lrs``, semi (smallest clean fraction) at each supervised-term weight of
    ``sweep_semi_weights``; with ``headroom_steps``, supervised and mix-and-separate trained
    that long (first seed). Every other cell runs each of ``preset.seeds`` except PIT and MixIT
    (references: the first seed) and, with ``preset.seeded_cells == "claims"``, the cells no
    verdict reads."""
    main, other = preset.conditioning, "late" if preset.conditioning == "deep" else "deep"
    # claim (a) compares the methods on deep conditioning where the grid has it (wsas.lab.report)
    claim_a = "deep" if main == "deep" or preset.conditioning_ablation else main

    def cell(
        mode: str,
        sources: int = 2,
        clean: float = 1.0,
        conditioning: str = main,
        first_seed: bool = False,
        claim: bool = True,
        **fields,
    ) -> list[Cell]:
        """``mode``'s cell for each seed it runs; ``fields`` are Cell's optional fields."""
        reference = mode in ("pit", "mixit")
        unread = preset.seeded_cells == "claims" and not claim
        seeds = preset.seeds[:1] if first_seed or reference or unread else preset.seeds
        return [Cell(mode, sources, clean, conditioning, seed, **fields) for seed in seeds]

    def read_by_claims(n: int, conditioning: str) -> bool:
        """The headroom check and claim (b) read 2-source cells on the main conditioning, claim
        (a) 3- and 4-source ones on ``claim_a``."""
        if n == 2:
            return conditioning == main
        return n in (3, 4) and conditioning == claim_a

    sizes = sorted(set(preset.unsupervised_sources) | set(sources))
    cells = cell("supervised") + cell("pit") + cell("supervised", clean=0.05)
    for mode in ("mixit", "mix-and-separate", "weak"):
        for n in sizes:
            cells += cell(mode, n, claim=read_by_claims(n, main))
    if preset.clap_ablation:
        cells += cell("weak", sim_weight=0.0)
    for seconds in preset.clap_seconds_ablation:
        cells += cell("weak", clap_seconds=seconds)
    check_critic_ablation(preset)
    for size in preset.critic_ablation:
        cells += cell("weak", critic=size)
    for target in preset.clause_level_ablation:
        cells += cell("weak", clause_level=target)
    if preset.conditioning_ablation:
        for mode in ("mix-and-separate", "weak"):
            for n in sizes:
                cells += cell(mode, n, conditioning=other, claim=read_by_claims(n, other))
    for fraction in preset.semi_fractions:
        cells += cell("semi", clean=fraction, claim=fraction == min(preset.semi_fractions))
    if preset.ablation_steps:  # on Tables 1-2's conditioning and on claim (a)'s
        for conditioning in dict.fromkeys((main, claim_a)):
            for mode in ("mix-and-separate", "weak"):
                cells += cell(
                    mode, 4, conditioning=conditioning, steps=preset.ablation_steps, claim=False
                )
    for weight in preset.sweep_sim_weights:
        cells += cell("weak", sim_weight=weight, first_seed=True)
    for lr in preset.sweep_lrs:
        cells += cell("mix-and-separate", lr=lr, first_seed=True)
    for weight in preset.sweep_semi_weights:
        cells += cell("semi", clean=min(preset.semi_fractions), lambda_s=weight, first_seed=True)
    if preset.headroom_steps:
        for mode in ("supervised", "mix-and-separate"):
            cells += cell(mode, steps=preset.headroom_steps, first_seed=True)
    return cells


def relative_cost(cell: Cell, steps: int) -> float:
    """Rough CPU cost of a cell relative to one supervised step (measured on the tiny preset):
    the weak and semi-supervised losses separate once per clause, deep conditioning repeats the
    whole U-Net per query; times its steps (``steps``: the preset's, unless the cell sets its
    own). Used to start the longest cells first when running them in parallel."""
    per_query = {"weak": 1.0, "semi": 0.9, "mixit": 0.45, "mix-and-separate": 0.3}.get(
        cell.mode, 0.0
    )
    per_step = (1.0 + per_query * cell.sources) * (2.3 if cell.conditioning == "deep" else 1.0)
    return per_step * (cell.steps or steps)


def check_critic(preset: Preset) -> None:
    """A one-line error unless ``preset.critic`` names a TinyCLAP size."""
    if preset.critic not in TINY_SIZES:
        raise WsasError(
            f"preset {preset.name}: critic '{preset.critic}' is not a TinyCLAP size; "
            f"choose one of {', '.join(TINY_SIZES)}"
        )


def check_critic_ablation(preset: Preset) -> None:
    """A one-line error unless the preset's critic and every size it ablates are TinyCLAP sizes
    (the ablated ones other than the critic)."""
    check_critic(preset)
    others = [s for s in TINY_SIZES if s != preset.critic]
    if unknown := [s for s in preset.critic_ablation if s not in others]:
        raise WsasError(
            f"critic_ablation: {', '.join(unknown)} is not another TinyCLAP size; "
            f"choose from {', '.join(others)}"
        )
