"""``wsas reproduce``: data, TinyCLAP, every training cell, evaluation, tables and figures.

The grids are the paper's Table 1 (methods x supervised / unsupervised with 2-, 3-, 4-source
training mixtures) and Table 2 (clean fractions, semi-supervised), plus deep vs late
conditioning as training mixtures grow. Each cell's evaluation is written as soon as it
finishes, so an interrupted run resumes where it stopped (finished cells are not recomputed,
a half-trained cell resumes from its checkpoint).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from wsas.presets import Preset, get_preset
from wsas.results import write_json, write_text

PAPER_TABLE1 = {  # SDR (dB) on MUSIC 2-source test mixtures, from the paper (METHOD.md)
    "pit": {"supervised": 8.0},
    "mixit": {"2": 3.2, "3": 2.3, "4": 1.4},
    "mix-and-separate": {"supervised": 8.3, "2": 5.4, "3": 4.7, "4": 3.8},
    "weak": {"2": 7.9, "3": 7.1, "4": 6.2},
}
PAPER_TABLE2 = {
    "supervised 100%": 8.1,
    "supervised 5%": 2.6,
    "semi 5%": 8.8,
    "semi 10%": 8.9,
    "semi 25%": 9.2,
}


@dataclass(frozen=True)
class Cell:
    mode: str
    sources: int = 2
    clean_fraction: float = 1.0
    conditioning: str = "deep"
    seed: int = 0
    steps: int | None = (
        None  # None: the preset's train_steps (the longer-training ablation sets it)
    )

    @property
    def name(self) -> str:
        clean = f"-clean{round(self.clean_fraction * 100)}" if self.clean_fraction < 1 else ""
        longer = f"-{self.steps}steps" if self.steps else ""
        return f"{self.mode}-x{self.sources}{clean}-{self.conditioning}-s{self.seed}{longer}"


def grid(preset: Preset, sources: tuple[int, ...] = (2,)) -> list[Cell]:
    """The cells a preset runs: ``smoke``/``tiny`` the 2-source column + semi 5% (plus the unsupervised
    methods at each extra size in ``sources``); larger presets the full grids, and where the preset
    sets ``ablation_steps``, mix-and-separate and weak on 4-source mixtures trained that long."""
    main, other = preset.conditioning, "late" if preset.conditioning == "deep" else "deep"

    def cell(
        mode: str,
        sources: int = 2,
        clean: float = 1.0,
        conditioning: str = main,
        steps: int | None = None,
    ) -> list[Cell]:
        return [Cell(mode, sources, clean, conditioning, seed, steps) for seed in preset.seeds]

    cells = cell("supervised") + cell("pit") + cell("supervised", clean=0.05)
    if preset.name in ("smoke", "tiny"):
        cells += cell("mixit") + cell("mix-and-separate") + cell("weak") + cell("semi", clean=0.05)
        for n in sorted(set(sources) - {2}):
            cells += cell("mix-and-separate", n) + cell("weak", n) + cell("mixit", n)
        return cells
    for mode in ("mixit", "mix-and-separate", "weak"):
        for n in (2, 3, 4):
            cells += cell(mode, n)
    for mode in ("mix-and-separate", "weak"):
        for n in (2, 3, 4):
            cells += cell(mode, n, conditioning=other)
    for fraction in (0.05, 0.10, 0.25):
        cells += cell("semi", clean=fraction)
    if preset.ablation_steps:
        cells += cell("mix-and-separate", 4, steps=preset.ablation_steps) + cell(
            "weak", 4, steps=preset.ablation_steps
        )
    return cells


def run_cell(
    cell: Cell,
    preset: Preset,
    corpus: Path,
    clap_ckpt: Path,
    runs: Path,
    progress: bool = True,
    steps: int | None = None,
) -> dict:
    """Train (or resume) one cell and evaluate it on the fixed test pairs (``steps`` overrides the cell's
    and the preset's)."""
    from wsas.clap.base import load_clap
    from wsas.evaluate import evaluate_run
    from wsas.train import TrainConfig, Trainer

    steps = steps or cell.steps or preset.train_steps
    config = TrainConfig(
        mode=cell.mode,
        sources=cell.sources,
        steps=steps,
        batch_size=preset.batch_size,
        lr=preset.lr,
        seed=cell.seed,
        conditioning=cell.conditioning,
        clean_fraction=cell.clean_fraction,
        val_every=max(1, steps // 4),
        val_mixtures=preset.val_mixtures,
        unet={
            "n_fft": preset.n_fft,
            "hop": preset.hop,
            "channels": preset.unet_channels,
            "levels": preset.unet_levels,
            "convs_per_block": preset.convs_per_block,
        },
    )
    run = runs / replace(cell, steps=None if steps == preset.train_steps else steps).name
    trainer = Trainer(config, corpus, run, load_clap("tiny", str(clap_ckpt)), str(clap_ckpt))
    started = time.time()
    trainer.run(resume=True, progress=progress)
    train_seconds = time.time() - started
    report = evaluate_run(run, corpus, preset.test_mixtures)
    return {
        "cell": asdict(cell),
        "name": cell.name,
        "train_seconds": round(train_seconds, 1),
        "history": trainer.history,
        **report,
    }


def relative_cost(cell: Cell) -> float:
    """Rough CPU cost of a cell relative to a supervised one (measured on the tiny preset): the
    weak and semi-supervised losses separate once per clause, deep conditioning repeats the whole
    U-Net per query. Used to start the longest cells first when running them in parallel."""
    per_query = {"weak": 1.0, "semi": 0.9, "mixit": 0.45, "mix-and-separate": 0.3}.get(
        cell.mode, 0.0
    )
    return (1.0 + per_query * cell.sources) * (2.3 if cell.conditioning == "deep" else 1.0)


def _run_cell_job(
    cell: Cell,
    preset: Preset,
    corpus: Path,
    clap_ckpt: Path,
    runs: Path,
    path: Path,
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Train and evaluate one cell (with ``threads`` torch threads when given) and write its JSON to ``path``."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    report = run_cell(cell, preset, corpus, clap_ckpt, runs, progress)
    write_json(path, {"preset": preset.name, **report})
    return report


def _mean_spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def tables(cells: list[dict], bounds: dict, conditioning: str = "deep") -> tuple[str, dict]:
    """Markdown tables (Table 1, Table 2, deep vs late, bounds) and their numbers as a dict.

    Tables 1 and 2 use the cells of the preset's main ``conditioning``.
    """

    def sdrs(steps: int | None = None, **match) -> list[float]:
        return [
            c["sdr"]
            for c in cells
            if c["cell"].get("steps") == steps and all(c["cell"][k] == v for k, v in match.items())
        ]

    t1, t2, cond, numbers_longer = {}, {}, {}, {}
    lines = [
        "### Table 1 analogue: SDR (dB) on 2-source test mixtures",
        "",
        "| method | supervised (clean) | unsup. 2-src | unsup. 3-src | unsup. 4-src | paper (sup / 2 / 3 / 4) |",
        "|---|---|---|---|---|---|",
    ]
    for mode, label in (
        ("pit", "PIT (oracle permutation)"),
        ("mixit", "MixIT (oracle permutation)"),
        ("mix-and-separate", "mix-and-separate (CLIPSep-style)"),
        ("weak", "bi-modal weak (ours)"),
    ):
        row = {
            "supervised": sdrs(mode="supervised", clean_fraction=1.0, conditioning=conditioning)
            if mode == "mix-and-separate"
            else sdrs(mode=mode, sources=2)
            if mode == "pit"
            else []
        }
        if mode != "pit":
            row.update(
                {str(n): sdrs(mode=mode, sources=n, conditioning=conditioning) for n in (2, 3, 4)}
            )
        t1[mode] = {k: float(np.mean(v)) for k, v in row.items() if v}
        paper = PAPER_TABLE1[mode]
        lines.append(
            f"| {label} | "
            + " | ".join(_mean_spread(row.get(k, [])) for k in ("supervised", "2", "3", "4"))
            + " | "
            + " / ".join(str(paper.get(k, "-")) for k in ("supervised", "2", "3", "4"))
            + " |"
        )
    lines += [
        "",
        "### Table 2 analogue: clean fraction and semi-supervision (2-source training)",
        "",
        "| training | SDR (dB) | paper |",
        "|---|---|---|",
    ]
    for label, match in (
        ("supervised 100%", {"mode": "supervised", "clean_fraction": 1.0}),
        ("supervised 5%", {"mode": "supervised", "clean_fraction": 0.05}),
        ("semi 5%", {"mode": "semi", "clean_fraction": 0.05}),
        ("semi 10%", {"mode": "semi", "clean_fraction": 0.10}),
        ("semi 25%", {"mode": "semi", "clean_fraction": 0.25}),
    ):
        values = sdrs(**match, sources=2, conditioning=conditioning)
        if values:
            t2[label] = float(np.mean(values))
            lines.append(f"| {label} | {_mean_spread(values)} | {PAPER_TABLE2[label]} |")
    if len({c["cell"]["conditioning"] for c in cells}) > 1:
        lines += [
            "",
            "### Deep vs late conditioning (unsupervised, SDR dB)",
            "",
            "| method | conditioning | 2-src | 3-src | 4-src |",
            "|---|---|---|---|---|",
        ]
        for mode in ("mix-and-separate", "weak"):
            for conditioning in ("deep", "late"):
                row = {
                    str(n): sdrs(mode=mode, sources=n, conditioning=conditioning) for n in (2, 3, 4)
                }
                cond[f"{mode}/{conditioning}"] = {k: float(np.mean(v)) for k, v in row.items() if v}
                lines.append(
                    f"| {mode} | {conditioning} | "
                    + " | ".join(_mean_spread(row[k]) for k in "234")
                    + " |"
                )
    longer = sorted(
        {
            (c["cell"]["mode"], c["cell"]["sources"], c["cell"]["conditioning"], c["cell"]["steps"])
            for c in cells
            if c["cell"].get("steps")
        }
    )
    if longer:
        lines += [
            "",
            "### Longer training (SDR dB)",
            "",
            "| method | sources | conditioning | preset's steps | longer | steps |",
            "|---|---|---|---|---|---|",
        ]
        for mode, n, conditioning, steps in longer:
            base, more = (
                sdrs(steps=k, mode=mode, sources=n, conditioning=conditioning)
                for k in (None, steps)
            )
            numbers_longer[f"{mode}/{n}/{conditioning}"] = {
                "steps": steps,
                "sdr": float(np.mean(more)),
                "sdr_preset_steps": float(np.mean(base)) if base else None,
            }
            lines.append(
                f"| {mode} | {n} | {conditioning} | {_mean_spread(base)} | {_mean_spread(more)} | {steps} |"
            )
    lines += [
        "",
        "### Bounds on the same test mixtures",
        "",
        "| estimate | SDR | SIR | SAR |",
        "|---|---|---|---|",
    ]
    for name, b in bounds.items():
        lines.append(
            f"| {name} | "
            + " | ".join("∞" if b[k] is None else f"{b[k]:.2f}" for k in ("sdr", "sir", "sar"))
            + " |"
        )
    numbers = {"table1": t1, "table2": t2, "conditioning": cond, "longer_training": numbers_longer}
    return "\n".join(lines) + "\n", numbers


def claims(numbers: dict, bounds: dict) -> dict:
    """The paper's claims as checks on our numbers (None where a cell was not run)."""
    t1, t2 = numbers["table1"], numbers["table2"]
    weak, ms = t1.get("weak", {}), t1.get("mix-and-separate", {})
    sup_sdr = ms.get("supervised")  # the supervised row of Table 1

    def check(ok, detail):
        return {"holds": bool(ok) if ok is not None else None, "detail": detail}

    gaps = {n: weak[n] - ms[n] for n in ("3", "4") if n in weak and n in ms}
    return {
        "a_weak_beats_mix_and_separate_by_2dB_at_3_4_sources": check(
            all(g >= 2 for g in gaps.values()) if gaps else None,
            {k: round(v, 2) for k, v in gaps.items()},
        ),
        "b_weak_reaches_95pct_of_supervised": check(
            weak["2"] >= 0.95 * sup_sdr if "2" in weak and sup_sdr else None,
            {"weak_2src": weak.get("2"), "supervised": sup_sdr},
        ),
        "c_semi_5pct_beats_supervised_100pct": check(
            t2["semi 5%"] >= t2["supervised 100%"]
            if {"semi 5%", "supervised 100%"} <= set(t2)
            else None,
            {k: t2.get(k) for k in ("semi 5%", "supervised 100%")},
        ),
        "d_supervised_within_3dB_of_oracle_mask": check(
            bounds["oracle_irm"]["sdr"] - sup_sdr <= 3 if sup_sdr else None,
            {"supervised": sup_sdr, "oracle_irm": bounds["oracle_irm"]["sdr"]},
        ),
    }


def findings(numbers: dict) -> list[str]:
    """The numbers behind claim (a), in sentences next to the paper's: weak minus mix-and-separate
    at each training-mixture size (main conditioning, then each conditioning of the ablation),
    each method's change from 2- to 4-source training mixtures, deep minus late conditioning,
    and what longer training changed."""
    t1, out = numbers["table1"], []
    weak, ms = t1.get("weak", {}), t1.get("mix-and-separate", {})
    paper_weak, paper_ms = PAPER_TABLE1["weak"], PAPER_TABLE1["mix-and-separate"]
    gaps = [n for n in "234" if n in weak and n in ms]
    if gaps:
        out.append(
            "Weak minus mix-and-separate: "
            + ", ".join(
                f"{weak[n] - ms[n]:+.2f} dB with {n}-source training mixtures (paper {paper_weak[n] - paper_ms[n]:+.1f})"
                for n in gaps
            )
            + "."
        )
    methods = (
        ("mix-and-separate", ms, paper_ms),
        ("weak", weak, paper_weak),
        ("MixIT", t1.get("mixit", {}), PAPER_TABLE1["mixit"]),
    )
    drops = [(label, row, paper) for label, row, paper in methods if "2" in row and "4" in row]
    if drops:
        out.append(
            "From 2- to 4-source training mixtures: "
            + ", ".join(
                f"{label} {row['4'] - row['2']:+.2f} dB (paper {paper['4'] - paper['2']:+.1f})"
                for label, row, paper in drops
            )
            + "."
        )
    for conditioning in ("deep", "late"):
        weak_c, ms_c = (
            numbers["conditioning"].get(f"{mode}/{conditioning}", {})
            for mode in ("weak", "mix-and-separate")
        )
        both = [n for n in "234" if n in weak_c and n in ms_c]
        if both:
            out.append(
                f"With {conditioning} conditioning, weak minus mix-and-separate: "
                + ", ".join(f"{weak_c[n] - ms_c[n]:+.2f} dB ({n} sources)" for n in both)
                + "."
            )
    for mode in ("mix-and-separate", "weak"):
        deep, late = (numbers["conditioning"].get(f"{mode}/{c}", {}) for c in ("deep", "late"))
        both = [n for n in "234" if n in deep and n in late]
        if both:
            out.append(
                f"Deep minus late conditioning, {mode}: "
                + ", ".join(f"{deep[n] - late[n]:+.2f} dB ({n} sources)" for n in both)
                + "."
            )
    for key, row in numbers.get("longer_training", {}).items():
        mode, n, conditioning = key.split("/")
        if row["sdr_preset_steps"] is not None:
            out.append(
                f"{mode} ({n} sources, {conditioning}) trained {row['steps']} steps: {row['sdr']:.2f} dB, "
                f"{row['sdr'] - row['sdr_preset_steps']:+.2f} dB over the preset's steps."
            )
    return out


def rank_agreement(reports: list[dict]) -> dict:
    """Spearman rank correlation between SDR and the reference-free CLAPScore improvement across cells."""
    from scipy.stats import spearmanr

    if len(reports) < 3:
        return {"cells": len(reports), "spearman": None}
    sdr = [r["sdr"] for r in reports]
    rho = spearmanr(sdr, [r["clapscore_improvement"] for r in reports]).statistic
    leak = spearmanr(sdr, [-r["leakage"] for r in reports]).statistic
    return {
        "cells": len(reports),
        "spearman": round(float(rho), 3),
        "spearman_negative_leakage": round(float(leak), 3),
    }


def figure(cells: list[dict], bounds: dict, path: Path) -> None:
    """SDR vs sources per training mixture (one line per method and conditioning) or, when all
    cells use 2-source mixtures, one bar per cell between the mixture and oracle-mask bounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    if len({c["cell"]["sources"] for c in cells}) == 1:
        ax.barh([c["name"] for c in cells], [c["sdr"] for c in cells], color="C0")
        for name, style in (("mixture", ":"), ("oracle_irm", "--")):
            ax.axvline(bounds[name]["sdr"], color="k", ls=style, lw=1, label=name)
        ax.set_xlabel("SDR on 2-source test mixtures (dB)")
        ax.legend(fontsize=8)
    else:
        for color, mode in zip(("C0", "C1", "C3"), ("mixit", "mix-and-separate", "weak")):
            for conditioning in ("deep", "late"):
                sel = [
                    c
                    for c in cells
                    if c["cell"]["mode"] == mode
                    and c["cell"]["conditioning"] == conditioning
                    and not c["cell"].get("steps")
                ]
                xs = sorted({c["cell"]["sources"] for c in sel})
                if xs:
                    ys = [np.mean([c["sdr"] for c in sel if c["cell"]["sources"] == n]) for n in xs]
                    ax.plot(
                        xs,
                        ys,
                        "o-" if conditioning == "deep" else "s--",
                        color=color,
                        label=f"{mode} ({conditioning})",
                    )
        supervised = [
            c["sdr"]
            for c in cells
            if c["cell"]["mode"] == "supervised" and c["cell"]["clean_fraction"] == 1
        ]
        if supervised:
            ax.axhline(
                np.mean(supervised), color="k", ls=":", lw=1, label="supervised (2-src, clean)"
            )
        ax.set_xticks(sorted({c["cell"]["sources"] for c in cells}))
        ax.set_xlabel("sources per training mixture")
        ax.set_ylabel("SDR on 2-source test mixtures (dB)")
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def prepare(
    preset: Preset,
    work: str | os.PathLike,
    clap_report: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[Path, Path]:
    """Build the preset's corpus and pretrain TinyCLAP under ``work/<preset>/`` unless already there.

    Returns ``(corpus folder, TinyCLAP checkpoint)``; writes the CLAP's scores to ``clap_report``.
    """
    from wsas.clap.base import load_clap
    from wsas.clap.tiny import evaluate_clap, pretrain
    from wsas.data.synth import build_corpus

    work = Path(work) / preset.name
    corpus, clap_ckpt = work / "data", work / "tinyclap.safetensors"
    if not (corpus / "metadata.csv").is_file():
        build_corpus(preset, corpus, progress=progress)
    if not clap_ckpt.is_file():
        t0 = time.time()
        pretrain(corpus, clap_ckpt, steps=preset.clap_steps, progress=progress)
        if clap_report:
            write_json(
                clap_report,
                {
                    "preset": preset.name,
                    "pretrain_steps": preset.clap_steps,
                    "pretrain_seconds": round(time.time() - t0, 1),
                    **evaluate_clap(load_clap("tiny", str(clap_ckpt)), corpus),
                },
            )
    return corpus, clap_ckpt


def _collect(reports, done: dict, progress: bool) -> None:
    """Record each finished cell's report in ``done`` (by name) as it arrives, and say so."""
    for report in reports:
        done[report["name"]] = report
        if progress:
            print(
                f"{report['name']}: SDR {report['sdr']:.2f} dB ({report['train_seconds']:.0f} s)",
                flush=True,
            )


def reproduce(
    preset_name: str,
    work: str | os.PathLike = "work",
    results: str | os.PathLike = "results",
    progress: bool = True,
    only: list[str] | None = None,
    sources: tuple[int, ...] = (2,),
    jobs: int = 1,
) -> dict:
    """Run a preset end to end; returns the summary written to ``results/<preset>/summary.json``.

    ``jobs > 1`` trains that many cells at once in worker processes (longest first), splitting the
    CPU threads between them: on 2 cores, two 1-thread jobs did 1.24x the work of one 2-thread job.
    """
    from wsas.data.datasets import load_embedded
    from wsas.data.mixing import fixed_pairs
    from wsas.evaluate import bounds as mixture_bounds

    preset = get_preset(preset_name)
    started = time.time()
    out = Path(results) / preset.name
    corpus, clap_ckpt = prepare(preset, work, out / "clap.json", progress)
    work = Path(work) / preset.name
    cells_dir = out / "cells"
    cells = grid(preset, sources)
    done = {
        c.name: json.loads(
            (cells_dir / f"{c.name}.json").read_text()
        )  # finished earlier: never recomputed
        for c in cells
        if (cells_dir / f"{c.name}.json").is_file()
    }
    todo = [
        c for c in cells if c.name not in done and not (only and c.mode not in only)
    ]  # --only: train these now
    if jobs > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from multiprocessing import get_context

        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(
                    _run_cell_job,
                    c,
                    preset,
                    corpus,
                    clap_ckpt,
                    work / "runs",
                    cells_dir / f"{c.name}.json",
                    threads,
                )
                for c in sorted(todo, key=relative_cost, reverse=True)
            ]
            finished = (future.result() for future in as_completed(futures))
            _collect(finished, done, progress)
    else:
        _collect(
            (
                _run_cell_job(
                    c,
                    preset,
                    corpus,
                    clap_ckpt,
                    work / "runs",
                    cells_dir / f"{c.name}.json",
                    progress=progress,
                )
                for c in todo
            ),
            done,
            progress,
        )
    reports = [done[c.name] for c in cells if c.name in done]
    pairs = fixed_pairs(load_embedded(corpus, "test"), preset.test_mixtures)
    bounds = mixture_bounds(pairs, preset.n_fft, preset.hop)
    markdown, numbers = tables(reports, bounds, preset.conditioning)
    said = findings(numbers)
    if said:
        markdown += (
            "\n### What the numbers say about claim (a)\n\n"
            + "\n".join(f"- {line}" for line in said)
            + "\n"
        )
    summary = {
        "preset": preset.to_dict(),
        "wall_seconds_this_invocation": round(time.time() - started, 1),
        "train_seconds_all_cells": round(sum(r["train_seconds"] for r in reports), 1),
        **numbers,
        "bounds": {
            k: {m: v[m] for m in ("sdr", "sir", "sar", "si_sdr")} for k, v in bounds.items()
        },
        "claims": claims(numbers, bounds),
        "findings": said,
        "clapscore_vs_sdr": rank_agreement(reports),
        "cells": [
            {
                k: r[k]
                for k in (
                    "name",
                    "sdr",
                    "sir",
                    "sar",
                    "si_sdr",
                    "sdri",
                    "clapscore_improvement",
                    "leakage",
                    "train_seconds",
                )
            }
            for r in reports
        ],
    }
    write_json(out / "summary.json", summary)
    header = (
        f"# Results: preset `{preset.name}`\n\nMade by `wsas reproduce --preset {preset.name}`; "
        f"{preset.test_mixtures} fixed 2-source test mixtures, seeds {list(preset.seeds)}, "
        f"{preset.conditioning} conditioning for Tables 1 and 2. "
        "Provenance (commit, machine, time) is in summary.json.\n\n"
    )
    write_text(out / "tables.md", header + markdown)
    figure(reports, bounds, out / "sdr_vs_sources.png")
    return summary
