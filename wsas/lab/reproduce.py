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
from dataclasses import asdict, replace
from pathlib import Path

import torch

from wsas.checkpoint import read_config
from wsas.clap import load_clap
from wsas.clap.pretrain import evaluate_clap, pretrain
from wsas.clap.tiny import SIZES as TINY_SIZES
from wsas.clap.tiny import config_is_size
from wsas.data.datasets import load_embedded
from wsas.data.mixing import fixed_pairs
from wsas.data.synth import build_corpus, corpus_matches
from wsas.evaluate import bounds as mixture_bounds
from wsas.evaluate import class_templates, evaluate_run
from wsas.lab.grid import Cell, check_critic, grid, relative_cost
from wsas.lab.report import (
    ablations,
    claims,
    figure,
    findings,
    headroom,
    rank_agreement,
    reading,
    si_sdr_tables,
    sweeps,
    tables,
    verdict_section,
)
from wsas.presets import CRITIC_MODES, Preset, TrainConfig, get_preset
from wsas.results import markdown_table, provenance, write_json, write_text
from wsas.train import Trainer


def train_cell(
    cell: Cell,
    preset: Preset,
    corpus: Path,
    clap_ckpt: Path,
    runs: Path,
    progress: bool = True,
    steps: int | None = None,
    resume: bool = True,
) -> tuple[Path, Trainer]:
    """Train one cell (continuing its checkpoint with ``resume``, else from scratch) with the
    grid's TinyCLAP ``clap_ckpt`` or, for a ``critic`` cell, the one of that size beside it
    (``steps`` overrides the cell's and the preset's). Returns its run folder and trainer."""
    steps = steps or cell.steps or preset.train_steps
    # the committed grids' critic heard in float32: a grid keeps it (as it keeps its critic)
    critic_bf16 = False if cell.mode in CRITIC_MODES else None
    config = preset.train_config(**{**cell.overrides(), "steps": steps}, critic_bf16=critic_bf16)
    clap_ckpt = critic_checkpoint(clap_ckpt, cell.critic)
    run = runs / replace(cell, steps=None if steps == preset.train_steps else steps).name
    train, val = load_embedded(corpus, "train"), load_embedded(corpus, "val")
    trainer = Trainer(config, load_clap("tiny", clap_ckpt), run, train, val)
    trainer.run(resume=resume, progress=progress)
    return run, trainer


def run_cell(
    cell: Cell,
    preset: Preset,
    corpus: Path,
    clap_ckpt: Path,
    runs: Path,
    progress: bool = True,
    steps: int | None = None,
    resume: bool = True,
) -> dict:
    """Train one cell (:func:`train_cell`) and evaluate its best-validation model on the fixed
    test pairs."""
    run, trainer = train_cell(cell, preset, corpus, clap_ckpt, runs, progress, steps, resume)
    report = evaluate_run(run, corpus, preset.test_mixtures)
    return {
        "cell": asdict(cell),
        "name": cell.name,
        "critic_size": cell.critic or preset.critic,  # the TinyCLAP that trained and queried it
        "train_seconds": round(trainer.seconds, 1),  # every sitting's, when resumed
        "history": trainer.history,
        "train": trainer.summary(),
        **report,
    }


def _run_cell_job(
    cell: Cell,
    preset: Preset,
    corpus: Path,
    clap_ckpt: Path,
    runs: Path,
    path: Path,
    threads: int | None = None,
    progress: bool = False,
    resume: bool = False,
) -> dict:
    """Train and evaluate one cell (with ``threads`` torch threads when given) and write its JSON to
    ``path``."""
    if threads:
        torch.set_num_threads(threads)
    report = run_cell(cell, preset, corpus, clap_ckpt, runs, progress, resume=resume)
    write_json(path, {"preset": preset.name, **report})
    return report


def prepare(
    preset: Preset,
    work: str | os.PathLike,
    clap_report: str | os.PathLike | None = None,
    progress: bool = True,
    ablation_critics: bool = False,
) -> tuple[Path, Path]:
    """Build the preset's corpus and pretrain its TinyCLAP (and, with ``ablation_critics``, one
    of each size of ``critic_ablation``) under ``work/<preset>/`` unless there already at that
    size. A size that learns into another's text space has that one pretrained first, and is
    pretrained again when the one there holds another text projection.

    Returns ``(corpus folder, TinyCLAP checkpoint)``; writes each CLAP's scores to
    ``clap_report`` (the other sizes' under ``"sizes"``).
    """
    check_critic(preset)
    work = Path(work) / preset.name
    corpus, clap_ckpt = work / "data", work / "tinyclap.safetensors"
    # a corpus of other clip lengths is rebuilt; its CLAP split, so its TinyCLAP, is the same
    if not (corpus / "metadata.csv").is_file() or not corpus_matches(corpus, preset):
        build_corpus(preset, corpus, progress=progress)
    wanted = [preset.critic, *(preset.critic_ablation if ablation_critics else ())]
    for size in _donors_first(wanted):
        ckpt = size_checkpoint(clap_ckpt, size, preset.critic)
        donor_ckpt = text_donor(clap_ckpt, size, preset.critic)
        if _is_size(ckpt, size, donor_ckpt):  # else absent, another size's or an older donor's
            continue
        found = pretrain_critic(preset, corpus, ckpt, size, progress, donor_ckpt)
        if not clap_report:
            continue
        report = _read_report(clap_report)
        sizes = {k: v for k, v in report.get("sizes", {}).items() if k != preset.critic}
        if size == preset.critic:  # other sizes' scores already there stay
            write_json(
                clap_report, {"preset": preset.name, **found, **({"sizes": sizes} if sizes else {})}
            )
        else:  # beside the grid critic's scores, which keep their provenance
            report["sizes"] = {**sizes, size: {**found, "provenance": provenance()}}
            write_text(clap_report, json.dumps(report, indent=2) + "\n")
    return corpus, clap_ckpt


def _read_report(path: str | os.PathLike) -> dict:
    """The CLAP scores already written to ``path`` ({} when there are none)."""
    return json.loads(Path(path).read_text()) if Path(path).is_file() else {}


def critic_of(report: dict) -> str:
    """The TinyCLAP size that trained and queried a cell's report (before reports named it, a
    critic-ablation cell's was its ``cell.critic`` and every other cell's the full one)."""
    return report.get("critic_size") or (report.get("cell") or {}).get("critic") or "full"


def _is_size(ckpt: Path, size: str, donor_ckpt: Path | None = None) -> bool:
    """Whether ``ckpt`` is a TinyCLAP checkpoint of ``size`` (a wsas.clap.tiny.SIZES key) and,
    for a size learned into another's text space, holds the text projection of ``donor_ckpt``."""
    if not ckpt.is_file() or not config_is_size(read_config(ckpt), size):
        return False
    if donor_ckpt is None:
        return True
    ours, donors = (load_clap("tiny", c).text_proj.state_dict() for c in (ckpt, donor_ckpt))
    return all(torch.equal(ours[k], donors[k]) for k in ours)


def _donors_first(sizes: list[str]) -> list[str]:
    """``sizes`` with the size each learns its text space from (wsas.clap.tiny.SIZES's
    ``"text_from"``) before it, once each."""
    order: list[str] = []
    for size in sizes:
        donor = TINY_SIZES[size].get("text_from")
        order += [s for s in (donor, size) if s is not None and s not in order]
    return order


def size_checkpoint(clap_ckpt: Path, size: str, grid_critic: str) -> Path:
    """Where a grid whose critic is ``grid_critic`` keeps its TinyCLAP of ``size``: at
    ``clap_ckpt`` for the grid critic, beside it for another size."""
    return critic_checkpoint(clap_ckpt, None if size == grid_critic else size)


def text_donor(clap_ckpt: Path, size: str, grid_critic: str) -> Path | None:
    """The checkpoint of the TinyCLAP whose text space ``size`` learns into, in a grid whose
    critic is ``grid_critic`` (None for a size that learns its own)."""
    donor = TINY_SIZES[size].get("text_from")
    return None if donor is None else size_checkpoint(clap_ckpt, donor, grid_critic)


def critic_checkpoint(clap_ckpt: Path, size: str | None) -> Path:
    """The TinyCLAP checkpoint of ``size`` beside the grid's ``clap_ckpt`` (None: that one)."""
    return clap_ckpt if size is None else clap_ckpt.with_name(f"tinyclap-{size}.safetensors")


def pretrain_critic(
    preset: Preset,
    corpus: Path,
    ckpt: Path,
    size: str,
    progress: bool,
    donor_ckpt: Path | None = None,
    steps: int | None = None,
    seed: int = 0,
) -> dict:
    """Pretrain a TinyCLAP of ``size`` for the preset into ``ckpt`` (into the text space of the
    TinyCLAP at ``donor_ckpt`` for a size that needs one) for ``steps`` (default: the preset's);
    its steps, time and scores."""
    started, steps = time.time(), steps or preset.clap_steps
    text_from = None if donor_ckpt is None else load_clap("tiny", donor_ckpt)
    pretrain(
        corpus, ckpt, steps=steps, seed=seed, progress=progress, size=size, text_from=text_from
    )
    return {
        "size": size,
        **({"text_from": TINY_SIZES[size]["text_from"]} if text_from is not None else {}),
        "pretrain_steps": steps,
        "pretrain_seconds": round(time.time() - started, 1),
        **evaluate_clap(load_clap("tiny", ckpt), corpus),
    }


def _collect(reports, done: dict, progress: bool) -> None:
    """Record each finished cell's report in ``done`` (by name) as it arrives, and say so."""
    for report in reports:
        done[report["name"]] = report
        if progress:
            print(
                f"{report['name']}: SDR {report['sdr']:.2f} dB ({report['train_seconds']:.0f} s)",
                flush=True,
            )


def compare(reports: list[dict], committed: dict[str, dict]) -> list[dict]:
    """Each re-made cell next to the committed result it replaces: SI-SDR and SDR differences."""
    rows = []
    for r in reports:
        old = committed.get(r["name"])
        if old is not None and "si_sdr" in old:
            rows.append(
                {
                    "cell": r["name"],
                    "si_sdr_now": round(r["si_sdr"], 3),
                    "si_sdr_committed": round(old["si_sdr"], 3),
                    "delta_si_sdr": round(r["si_sdr"] - old["si_sdr"], 3),
                    "delta_sdr": round(r["sdr"] - old["sdr"], 3),
                    "committed_at": old.get("provenance", {}).get("git_commit"),
                    # a committed cell scored on other test clips, or trained and queried by
                    # another TinyCLAP, is not a same-seed re-run
                    "same_test_clips": old.get("test_clip_seconds") == r.get("test_clip_seconds"),
                    "same_critic": critic_of(old) == critic_of(r),
                }
            )
    return rows


def reproduce(
    preset_name: str,
    work: str | os.PathLike = "work",
    results: str | os.PathLike = "results",
    progress: bool = True,
    only: list[str] | None = None,
    sources: tuple[int, ...] = (),
    jobs: int = 1,
    resume: bool = False,
    seeds: tuple[int, ...] = (),
) -> dict:
    """Run a preset end to end; returns the summary written to ``results/<preset>/summary.json``.

    Every cell of the grid is trained (committed results are the reference, never a cache) and
    its result written as soon as it finishes, seed by seed. With ``resume``, cells already in
    ``results/<preset>/cells`` are kept and half-trained ones continue from their checkpoints;
    the summary lists which cells were resumed and from which commit. Cells in that folder that
    are not in this grid (e.g. other mixture sizes) stay in the tables. Only cells scored on this
    preset's test clips are kept either way. The summary ends with each re-made cell's
    difference from the committed one. ``jobs > 1`` trains that many cells at once in worker
    processes (each seed's longest first), splitting the CPU threads between them. ``seeds``
    replaces the preset's seeds.
    """
    preset = get_preset(preset_name)
    preset = replace(preset, seeds=tuple(seeds)) if seeds else preset
    started = time.time()
    out = Path(results) / preset.name
    committed = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("cells/*.json"))}
    # only cells scored on this preset's test clips, trained and queried by the TinyCLAP the grid
    # gives them, can be kept (resumed, or other grids')
    seconds = round(preset.test_samples / preset.sr, 3)
    usable = {
        k: v
        for k, v in committed.items()
        if v.get("test_clip_seconds") == seconds
        and critic_of(v) == ((v.get("cell") or {}).get("critic") or preset.critic)
    }
    cells = grid(preset, sources)  # bad grid fields fail before the corpus is built
    corpus, clap_ckpt = prepare(preset, work, out / "clap.json", progress, ablation_critics=True)
    done = {c.name: usable[c.name] for c in cells if resume and c.name in usable}
    resumed = {name: r.get("provenance", {}).get("git_commit") for name, r in done.items()}
    todo = [c for c in cells if c.name not in done and not (only and c.mode not in only)]
    runs = Path(work) / preset.name / "runs"
    train_cells(todo, preset, corpus, clap_ckpt, runs, out / "cells", done, jobs, resume, progress)
    names = [c.name for c in cells]
    others = {k: v for k, v in usable.items() if k not in names}  # other grids' cells stay
    reports = [done[n] for n in names if n in done] + list(others.values())
    summary = write_results(preset, corpus, reports, out)
    summary |= {
        "wall_seconds_this_invocation": round(time.time() - started, 1),
        "resumed_cells": resumed,
        "kept_from_other_grids": sorted(others),
        "compared_with_committed": compare(
            [done[n] for n in names if n in done and n not in resumed], committed
        ),
    }
    write_json(out / "summary.json", summary)
    return summary


def train_cells(
    todo: list[Cell],
    preset: Preset,
    corpus: Path,
    clap_ckpt: Path,
    runs: Path,
    cells_dir: Path,
    done: dict,
    jobs: int = 1,
    resume: bool = False,
    progress: bool = True,
) -> None:
    """Train and evaluate each cell of ``todo`` (every cell of one seed before the next seed's),
    writing ``cells_dir/<name>.json`` as each finishes and recording its report in ``done``;
    ``jobs > 1`` trains that many at once in worker processes (each seed's longest first),
    splitting the CPU threads between them."""
    todo = sorted(todo, key=lambda c: c.seed)
    args = dict(corpus=corpus, clap_ckpt=clap_ckpt, runs=runs, resume=resume)
    if jobs <= 1 or len(todo) <= 1:
        reports = (
            _run_cell_job(c, preset, path=cells_dir / f"{c.name}.json", progress=progress, **args)
            for c in todo
        )
        _collect(reports, done, progress)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    threads = max(1, (os.cpu_count() or 1) // jobs)
    order = sorted(todo, key=lambda c: (c.seed, -relative_cost(c, preset.train_steps)))
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(
                _run_cell_job, c, preset, path=cells_dir / f"{c.name}.json", threads=threads, **args
            )
            for c in order
        ]
        try:
            _collect((f.result() for f in as_completed(futures)), done, progress)
        except BaseException:  # Ctrl-C, or a cell stopped by a signal: start no other cell
            pool.shutdown(cancel_futures=True)  # running cells save their checkpoints
            raise


def write_results(preset: Preset, corpus: Path, reports: list[dict], out: Path) -> dict:
    """The tables, verdicts, findings and figure of a preset's cells: ``out/tables.md`` and
    ``out/sdr_vs_sources.png``; returns the numbers for ``summary.json``."""
    pairs = fixed_pairs(load_embedded(corpus, "test"), preset.test_mixtures)
    templates = class_templates(load_embedded(corpus, "train"), preset.n_fft, preset.hop)
    bounds = mixture_bounds(pairs, preset.n_fft, preset.hop, templates=templates)
    markdown, numbers = tables(reports, bounds, preset.conditioning)
    markdown = si_sdr_tables(reports, preset.conditioning) + "\n" + markdown
    said = findings(numbers)
    if said:
        markdown += "\n### What the numbers say about claim (a) (SDR)\n\n"
        markdown += "\n".join(f"- {line}" for line in said) + "\n"
    verdicts = claims(reports, bounds, preset.conditioning)
    room = headroom(reports, preset.conditioning)
    markdown += verdict_section("Headroom: can this corpus show the effect? (SI-SDR, paired)", room)
    markdown += verdict_section("The claims, decided on SI-SDR (paired, 95 % intervals)", verdicts)
    ablated = ablations(reports, preset.conditioning)
    markdown += verdict_section("The CLAP term and other critics (SI-SDR, paired)", ablated)
    defaults = {"sim_weight": TrainConfig.sim_weight, "lr": preset.lr}
    swept = sweeps(reports, preset.conditioning, {**defaults, "lambda_s": TrainConfig.lambda_s})
    if swept:
        markdown += "\n### Sweeps on validation (first seed, the same budget)\n\n"
        markdown += markdown_table(swept) + "\n"
    read = reading(reports, bounds, {**room, **verdicts, **ablated})
    markdown += "\n### What the numbers say\n\n" + "\n".join(f"- {line}" for line in read) + "\n"
    seeds = f"seeds {list(preset.seeds)} (PIT and MixIT"
    seeds += ", and the cells no verdict reads" if preset.seeded_cells == "claims" else ""
    header = (
        f"# Results: preset `{preset.name}`\n\nMade by `wsas reproduce --preset {preset.name}`; "
        f"{preset.test_mixtures} fixed 2-source test mixtures of "
        f"{preset.test_samples / preset.sr:g} s, {seeds}: the first), "
        f"{preset.conditioning} conditioning for Tables 1 and 2. "
        "Provenance (commit, machine, time) is in summary.json.\n\n"
    )
    write_text(out / "tables.md", header + markdown)
    figure(reports, bounds, out / "sdr_vs_sources.png")
    cell_keys = ("name", "sdr", "sir", "sar", "si_sdr", "sdri", "clapscore_improvement")
    cell_keys += ("leakage", "train_seconds", "train")
    return {
        "preset": preset.to_dict(),
        "train_seconds_all_cells": round(sum(r["train_seconds"] for r in reports), 1),
        **numbers,
        "bounds": {
            k: {m: v[m] for m in ("sdr", "sir", "sar", "si_sdr")} for k, v in bounds.items()
        },
        "claims": verdicts,
        "headroom": room,
        "ablations": ablated,
        "sweeps": swept,
        "findings": said,
        "reading": read,
        "clapscore_vs_sdr": rank_agreement(reports),
        "cells": [{k: r.get(k) for k in cell_keys} for r in reports],
    }
