"""One option's values side by side: each regime trained with each value over seeds, scored on
the same test mixtures, every value paired against the first.

    python -m wsas.lab.ablate --preset tiny --field conditioning --values deep late cross \
        --modes supervised weak --seeds 0 1 2

writes ``results/<preset>/ablations/<field>.json`` and ``.md`` (validation and test SI-SDR, SDR,
the seconds per training step, and the paired difference of each value from the first). Cells
already written to ``results/<preset>/cells/`` with ``--resume`` are read, not retrained.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from wsas.lab.grid import Cell
from wsas.lab.reproduce import prepare, run_cell
from wsas.lab.stats import mean_ci, paired_difference
from wsas.presets import CRITIC_MODES, get_preset
from wsas.results import markdown_table, write_json, write_text


def ablate(
    preset_name: str,
    field: str,
    values: list,
    modes: tuple[str, ...] = ("supervised", "weak"),
    seeds: tuple[int, ...] = (0, 1, 2),
    work: str = "work",
    results: str = "results",
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train and score ``Cell(mode, seed, field=value)`` for every combination; returns (and
    writes) one row per mode and value, and the paired differences from ``values[0]``."""
    preset = get_preset(preset_name)
    corpus, clap_ckpt = prepare(preset, work, Path(results) / preset.name / "clap.json", progress)
    cells_dir = Path(results) / preset.name / "cells"
    reports: dict[tuple[str, object], list[dict]] = {}
    for seed in seeds:  # every value of one seed before the next seed's
        for mode in modes:
            for value in values:
                cell = Cell(mode, conditioning=preset.conditioning, seed=seed)
                cell = replace(cell, **{field: value})
                path = cells_dir / f"{cell.name}.json"
                if resume and path.is_file():
                    report = json.loads(path.read_text())
                else:
                    runs = Path(work) / preset.name / "runs"
                    report = run_cell(cell, preset, corpus, clap_ckpt, runs, progress, resume=False)
                    write_json(path, {"preset": preset.name, **report})
                reports.setdefault((mode, value), []).append(report)
    rows, differences = _rows(reports, modes, values)
    summary = {"preset": preset.name, "field": field, "seeds": list(seeds), "rows": rows}
    summary["paired_si_sdr_vs_first"] = differences
    out = Path(results) / preset.name / "ablations" / field
    write_json(out.with_suffix(".json"), summary)
    text = f"# `{field}` on `{preset.name}`: {', '.join(map(str, values))}\n\n"
    text += f"Seeds {list(seeds)}; each critic-trained regime's critic heard in float32 "
    text += f"({', '.join(CRITIC_MODES)}). Made by `python -m wsas.lab.ablate`.\n\n"
    text += markdown_table(rows, 2) + "\n\n" + markdown_table(differences, 2) + "\n"
    write_text(out.with_suffix(".md"), text)
    return summary


def _rows(reports: dict, modes, values) -> tuple[list[dict], list[dict]]:
    rows, differences = [], []
    for mode in modes:
        first = np.array([r["items"]["si_sdr"] for r in reports[(mode, values[0])]])
        for value in values:
            cells = reports[(mode, value)]
            si = mean_ci([r["si_sdr"] for r in cells])
            val = [r["train"]["best_val_si_sdr"] for r in cells]
            plateau = [r["train"]["last_quarter_gain_db"] for r in cells]
            steps = [r["history"][-1]["step"] for r in cells]
            rows.append(
                {
                    "mode": mode,
                    "value": str(value),
                    "seeds": len(cells),
                    "best_val_si_sdr": float(np.mean(val)),
                    "test_si_sdr": si[0],
                    "test_si_sdr_ci95": f"[{si[1]:.2f}, {si[2]:.2f}]",
                    "test_sdr": float(np.mean([r["sdr"] for r in cells])),
                    "last_quarter_gain_db": float(np.mean(plateau)),
                    "seconds_per_step": float(
                        np.mean([r["train_seconds"] / s for r, s in zip(cells, steps)])
                    ),
                }
            )
            if value != values[0]:
                items = np.array([r["items"]["si_sdr"] for r in cells])
                mean, low, high = paired_difference(items, first)
                differences.append(
                    {
                        "mode": mode,
                        "difference": f"{value} - {values[0]}",
                        "si_sdr_db": mean,
                        "ci95": f"[{low:.2f}, {high:.2f}]",
                    }
                )
    return rows, differences


def _value(text: str):
    """A value from the command line: a number where it reads as one, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wsas.lab.ablate", description=__doc__)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--field", required=True, help="a Cell field, e.g. conditioning")
    parser.add_argument("--values", nargs="+", required=True, help="the first is the reference")
    parser.add_argument("--modes", nargs="+", default=["supervised", "weak"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", default="work")
    parser.add_argument("--results", default="results")
    parser.add_argument("--resume", action="store_true", help="read cells already written")
    args = parser.parse_args(argv)
    values = [_value(v) for v in args.values]
    ablate(
        args.preset, args.field, values, tuple(args.modes), tuple(args.seeds), args.work,
        args.results, args.resume,
    )  # fmt: skip


if __name__ == "__main__":
    main()
