"""The report: tables next to the paper's numbers, the paper's claims checked, findings in
sentences computed from the numbers, and the figure. Pure functions of the cells' results."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wsas.lab.grid import Cell
from wsas.lab.stats import mean_ci, paired_difference, verdict

METHODS = (  # Table 1's rows; the unconditional ones are references, out of the ranking
    ("pit", "PIT (oracle permutation)"),
    ("mixit", "MixIT (oracle selection)"),
    ("mix-and-separate", "mix-and-separate (CLIPSep-style)"),
    ("weak", "bi-modal weak (ours)"),
)

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


def _mean_spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def tables(cells: list[dict], bounds: dict, conditioning: str = "deep") -> tuple[str, dict]:
    """Markdown tables (Table 1, Table 2, deep vs late, longer training, bounds) and their
    numbers as a dict. Tables 1 and 2 use the cells of the preset's main ``conditioning``."""
    lines, t1 = _table1(cells, conditioning)
    more, t2 = _table2(cells, conditioning)
    lines += more + _conditioning_table(
        cells,
        "Deep vs late conditioning (unsupervised, SDR dB)",
        lambda found: _mean_spread([c["sdr"] for c in found]),
    )
    cond = {}
    if len({c["cell"]["conditioning"] for c in cells}) > 1:
        for mode in ("mix-and-separate", "weak"):
            for kind in ("deep", "late"):
                row = {
                    str(n): _sdrs(cells, mode=mode, sources=n, conditioning=kind)
                    for n in (2, 3, 4)
                }
                cond[f"{mode}/{kind}"] = {k: float(np.mean(v)) for k, v in row.items() if v}
    more, longer = _longer_table(cells)
    lines += more + _bounds_table(bounds)
    numbers = {"table1": t1, "table2": t2, "conditioning": cond, "longer_training": longer}
    return "\n".join(lines) + "\n", numbers


def _sdrs(cells: list[dict], steps: int | None = None, **match) -> list[float]:
    return [c["sdr"] for c in _matching(cells, steps, **match)]


def _table1(cells: list[dict], conditioning: str) -> tuple[list[str], dict]:
    """Table 1's analogue (SDR by method and training-mixture size) and its means."""
    t1 = {}
    lines = [
        "### Table 1 analogue: SDR (dB) on 2-source test mixtures",
        "",
        "| method | supervised (clean) | unsup. 2-src | unsup. 3-src | unsup. 4-src "
        "| paper (sup / 2 / 3 / 4) |",
        "|---|---|---|---|---|---|",
    ]
    for mode, label in (
        ("pit", "PIT (oracle permutation)"),
        ("mixit", "MixIT (oracle selection)"),
        ("mix-and-separate", "mix-and-separate (CLIPSep-style)"),
        ("weak", "bi-modal weak (ours)"),
    ):
        supervised = {"mode": "supervised", "clean_fraction": 1.0, "conditioning": conditioning}
        row = {
            "supervised": _sdrs(cells, **supervised)
            if mode == "mix-and-separate"
            else _sdrs(cells, mode=mode, sources=2)
            if mode == "pit"
            else []
        }
        if mode != "pit":
            row |= {
                str(n): _sdrs(cells, mode=mode, sources=n, conditioning=conditioning)
                for n in (2, 3, 4)
            }
        t1[mode] = {k: float(np.mean(v)) for k, v in row.items() if v}
        paper = PAPER_TABLE1[mode]
        lines.append(
            f"| {label} | "
            + " | ".join(_mean_spread(row.get(k, [])) for k in ("supervised", "2", "3", "4"))
            + " | "
            + " / ".join(str(paper.get(k, "-")) for k in ("supervised", "2", "3", "4"))
            + " |"
        )
    return lines, t1


def _table2(cells: list[dict], conditioning: str) -> tuple[list[str], dict]:
    """Table 2's analogue (clean fraction and semi-supervision) and its means."""
    t2 = {}
    lines = [
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
        values = _sdrs(cells, **match, sources=2, conditioning=conditioning)
        if values:
            t2[label] = float(np.mean(values))
            lines.append(f"| {label} | {_mean_spread(values)} | {PAPER_TABLE2[label]} |")
    return lines, t2


def _longer_table(cells: list[dict]) -> tuple[list[str], dict]:
    """Cells trained longer than the preset's steps beside the same seeds at its steps."""
    longer = sorted(
        {
            (c["cell"]["mode"], c["cell"]["sources"], c["cell"]["conditioning"], c["cell"]["steps"])
            for c in cells
            if c["cell"].get("steps")
        }
    )
    if not longer:
        return [], {}
    numbers = {}
    lines = [
        "",
        "### Longer training (SDR dB)",
        "",
        "| method | sources | conditioning | preset's steps (same seeds) | longer | steps |",
        "|---|---|---|---|---|---|",
    ]
    for mode, n, conditioning, steps in longer:
        match = {"mode": mode, "sources": n, "conditioning": conditioning, "clean_fraction": 1.0}
        more = _matching(cells, steps, **match)
        seeds = {c["cell"]["seed"] for c in more}  # the same seeds at the preset's steps
        base = [c["sdr"] for c in _matching(cells, **match) if c["cell"]["seed"] in seeds]
        more = [c["sdr"] for c in more]
        numbers[f"{mode}/{n}/{conditioning}"] = {
            "steps": steps,
            "sdr": float(np.mean(more)),
            "sdr_preset_steps": float(np.mean(base)) if base else None,
        }
        lines.append(
            f"| {mode} | {n} | {conditioning} | {_mean_spread(base)} "
            f"| {_mean_spread(more)} | {steps} |"
        )
    return lines, numbers


def _bounds_table(bounds: dict) -> list[str]:
    lines = [
        "",
        "### Bounds on the same test mixtures",
        "",
        "| estimate | SI-SDR | SI-SDRi | SDR | SDRi | SIR | SAR | SNR-SDR | SNR-SDRi |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, b in bounds.items():
        keys = ("si_sdr", "si_sdri", "sdr", "sdri", "sir", "sar", "snr_sdr", "snr_sdri")
        lines.append(f"| {name} | " + " | ".join(_db_cell(b, k) for k in keys) + " |")
    return lines


# Cell fields that are None on the main grid
VARIANTS = ("steps", "sim_weight", "lr", "lambda_s", "clap_seconds", "critic", "clause_level")


def _matching(cells: list[dict], steps: int | None = None, **match) -> list[dict]:
    """The cells (one per seed) of a grid position; ablation and sweep cells only when asked
    for by their ``VARIANTS`` field (``steps=900``, ``sim_weight=0.0``, ``lr=1e-3``,
    ``lambda_s=4.0``, ``clap_seconds=1.024``, ``critic="full"``, ``clause_level="floor"``)."""
    match = {**dict.fromkeys(VARIANTS), "steps": steps, **match}
    return [c for c in cells if all(c["cell"].get(k) == v for k, v in match.items())]


def _conditioning_table(cells: list[dict], title: str, text: Callable[[list[dict]], str]) -> list:
    """Markdown lines of mix-and-separate and weak by conditioning (deep, late) and training-
    mixture size (2-4 sources), ``text(the cells of one position)`` in each; none when the cells
    have one conditioning."""
    if len({c["cell"]["conditioning"] for c in cells}) < 2:
        return []
    lines = ["", f"### {title}", "", "| method | conditioning | 2-src | 3-src | 4-src |"]
    lines.append("|---|---|---|---|---|")
    for mode in ("mix-and-separate", "weak"):
        for kind in ("deep", "late"):
            found = [_matching(cells, mode=mode, sources=n, conditioning=kind) for n in (2, 3, 4)]
            lines.append(f"| {mode} | {kind} | " + " | ".join(map(text, found)) + " |")
    return lines


def _interval(values: list[float]) -> str:
    """``mean [low, high]`` over seeds (95 % Student t), the value alone for one seed."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    mean, low, high = mean_ci(values)
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def si_sdr_tables(cells: list[dict], conditioning: str) -> str:
    """Table 1 and Table 2 in SI-SDR (what decides the claims), mean and 95 % interval over
    seeds, deep vs late conditioning where both ran, then every cell with SDR, SIR, SAR, its best
    validation step and the plateau check."""
    lines = [
        "### Table 1 analogue: SI-SDR (dB) on 2-source test mixtures (decides the claims)",
        "",
        "| method | supervised (clean) | unsup. 2-src | unsup. 3-src | unsup. 4-src |",
        "|---|---|---|---|---|",
    ]
    for mode, label in METHODS:
        if mode == "pit":
            row = {"supervised": _matching(cells, mode="pit", sources=2)}
        else:
            row = {
                str(n): _matching(cells, mode=mode, sources=n, conditioning=conditioning)
                for n in (2, 3, 4)
            }
            if mode == "mix-and-separate":
                row["supervised"] = _matching(
                    cells, mode="supervised", clean_fraction=1.0, conditioning=conditioning
                )
        lines.append(
            f"| {label} | "
            + " | ".join(
                _interval([c["si_sdr"] for c in row.get(k, [])])
                for k in ("supervised", "2", "3", "4")
            )
            + " |"
        )
    lines += [
        "",
        "### Table 2 analogue: SI-SDR (dB), clean fraction and semi-supervision",
        "",
        "| training | SI-SDR (dB) |",
        "|---|---|",
    ]
    for mode in ("supervised", "semi"):
        for fraction in sorted(
            {c["cell"]["clean_fraction"] for c in cells if c["cell"]["mode"] == mode}
        ):
            found = _matching(
                cells, mode=mode, clean_fraction=fraction, sources=2, conditioning=conditioning
            )
            if found:
                label = f"{mode} {round(fraction * 100)}%"
                lines.append(f"| {label} | {_interval([c['si_sdr'] for c in found])} |")
    lines += _conditioning_table(  # claim (a) is decided on deep conditioning
        cells,
        "Deep vs late conditioning: SI-SDR (dB), unsupervised",
        lambda found: _interval([c["si_sdr"] for c in found]),
    )
    lines += [
        "",
        "### Every cell",
        "",
        "In dB, every SDR on the same estimates: SDR, SIR, SAR and SDRi are BSS Eval v3 (the "
        "paper's); SI-SDRi is SI-SDR minus the mixture's; SNR-SDR and SNR-SDRi are the SNR-style "
        "SDR of AudioSep and the DCASE 2024 task 9 evaluator (no gain, no filter: it alone pays "
        "for a wrong level; `wsas.metrics` defines each). Level error: an estimate's energy over "
        "its reference's, signed (negative: too quiet), mean over the test sources (0 is right). "
        "- for cells scored before a column was measured.",
        "",
        "| cell | SI-SDR | SI-SDRi | SDR | SDRi | SIR | SAR | SNR-SDR | SNR-SDRi | level error "
        "| best step | last-quarter val gain |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        train = c.get("train", {})
        gain = train.get("last_quarter_gain_db")
        keys = ("si_sdr", "si_sdri", "sdr", "sdri", "sir", "sar", "snr_sdr", "snr_sdri")
        values = " | ".join(_db_cell(c, k) for k in keys)
        level = "-" if c.get("level_db") is None else f"{c['level_db']:+.2f}"  # older cells: none
        gain = "-" if gain is None else f"{gain:+.2f}"
        lines.append(
            f"| {c['name']} | {values} | {level} | {train.get('best_step', '-')} | {gain} |"
        )
    return "\n".join(lines) + "\n"


def _db_cell(cell: dict, key: str) -> str:
    """A cell's metric in a table: ``-`` where its report predates the metric, ``∞`` where it is
    stored as null (an exact decomposition, e.g. SAR of the mixture itself)."""
    if key not in cell:
        return "-"
    return "∞" if cell[key] is None else f"{cell[key]:.2f}"


def _items(cells: list[dict]) -> np.ndarray | None:
    """Per-test-mixture SI-SDR ``(seeds, items)`` of a grid position (None if not run)."""
    rows = [c["items"]["si_sdr"] for c in cells if "items" in c]
    return np.array(rows, dtype=float) if rows else None


def _decide(a, b, threshold: float, direction: str = ">=", weight: float = 1.0) -> dict:
    """Paired difference ``a - weight * b`` on the same test mixtures, its interval and verdict."""
    if a is None or b is None:
        return {"verdict": "not run"}
    mean, low, high = paired_difference(a, weight * b)
    return {
        "difference_db": round(mean, 3),
        "ci95": [round(low, 3), round(high, 3)],
        "threshold_db": threshold,
        "direction": direction,
        "verdict": verdict(low, high, threshold, direction),
    }


def verdict_section(title: str, decisions: dict[str, dict]) -> str:
    """A markdown section with one line per decision: its verdict and numbers."""
    lines = [
        f"- {name}: **{d['verdict']}** "
        + json.dumps({k: v for k, v in d.items() if k != "verdict"})
        for name, d in decisions.items()
    ]
    return f"\n### {title}\n\n" + "\n".join(lines) + "\n"


def headroom(cells: list[dict], conditioning: str) -> dict:
    """Can the corpus show the paper's effect? Supervised (100 % clean) minus mix-and-separate
    (2-source training mixtures) and minus supervised on 5 % of the clips, SI-SDR, paired 95 %
    intervals on the same test mixtures: both should be clearly positive. Where both were also
    trained longer (``Cell.steps``), supervised minus mix-and-separate at that budget too."""
    main = {"sources": 2, "conditioning": conditioning, "clean_fraction": 1.0}
    supervised = _items(_matching(cells, mode="supervised", **main))
    room = {
        "supervised_minus_mix_and_separate": _decide(
            supervised, _items(_matching(cells, mode="mix-and-separate", **main)), 0.0
        ),
        "supervised_minus_supervised_5pct": _decide(
            supervised,
            _items(_matching(cells, mode="supervised", **{**main, "clean_fraction": 0.05})),
            0.0,
        ),
    }
    longer = _at_longer_budgets(cells, ("supervised", "mix-and-separate"), 0.0, **main)
    room |= {f"supervised_minus_mix_and_separate_{k}_steps": d for k, d in longer.items()}
    return room


def _at_longer_budgets(
    cells: list[dict], modes: tuple[str, str], threshold: float, **match
) -> dict[int, dict]:
    """At each longer budget (``Cell.steps``) where both ``modes`` were trained: the first minus
    the second, decided against ``threshold`` (see :func:`_decide`), keyed by the budget."""
    found = {}
    for steps in sorted({c["cell"].get("steps") for c in cells} - {None}):
        both = [_items(_matching(cells, steps, mode=m, **match)) for m in modes]
        if all(b is not None for b in both):
            found[steps] = _decide(*both, threshold)
    return found


def ablations(cells: list[dict], conditioning: str) -> dict:
    """What the weak objective's CLAP term adds: weak minus weak trained with ``sim_weight`` 0;
    and what a critic hearing only ``clap_seconds`` of each clause estimate, a TinyCLAP of
    another size (``critic``), or a magnitude target for clauses (``clause_level``) costs or adds:
    that weak minus the main weak (2-source training mixtures, the same seeds), SI-SDR, paired
    95 % interval on the same test mixtures; "holds" when the difference is positive."""
    main = {"mode": "weak", "sources": 2, "conditioning": conditioning}
    weak = _items(_matching(cells, **main))
    found = {
        "clap_term_weak_minus_weak_without_it": _decide(
            weak, _items(_matching(cells, sim_weight=0.0, **main)), 0.0
        )
    }
    # each variant of weak beside the main one: its Cell field and how its result is named
    named = {"clap_seconds": "clap_hears_{:g}s", "critic": "{}_critic", "clause_level": "clause_{}"}
    for field, name in named.items():
        for value in sorted({c["cell"].get(field) for c in cells} - {None}):
            variant = _items(_matching(cells, **{field: value}, **main))
            found[f"{name.format(value)}_weak_minus_weak"] = _decide(variant, weak, 0.0)
    return found


def sweeps(cells: list[dict], conditioning: str, defaults: dict[str, float]) -> list[dict]:
    """The weight and learning-rate sweeps, chosen on validation: for weak's ``sim_weight``,
    mix-and-separate's ``lr`` and semi's ``lambda_s`` (2-source training mixtures, at each clean
    fraction a sweep used), each value tried at the first seed (``defaults``: the main grid's
    values), its best validation SI-SDR and its test SI-SDR, and which value validation chooses.
    Empty when no sweep cell ran."""
    rows = []
    for mode, field in (("weak", "sim_weight"), ("mix-and-separate", "lr"), ("semi", "lambda_s")):
        swept = [c for c in cells if c["cell"]["mode"] == mode and c["cell"].get(field) is not None]
        for fraction in sorted({c["cell"]["clean_fraction"] for c in swept}):
            rows += _sweep_rows(cells, mode, field, fraction, conditioning, defaults[field])
    return rows


def _sweep_rows(
    cells: list[dict], mode: str, field: str, fraction: float, conditioning: str, default: float
) -> list[dict]:
    """One sweep's rows (see :func:`sweeps`): ``mode`` at clean ``fraction``, ``field`` varied
    (``default``: its value on the main grid)."""
    main = {"mode": mode, "sources": 2, "conditioning": conditioning, "clean_fraction": fraction}
    tried = {c["cell"].get(field) for c in cells if c["cell"]["mode"] == mode} - {None}
    found = []
    for value in [None, *sorted(tried)]:
        runs = [
            c
            for c in _matching(cells, **main, **{field: value})
            if c.get("train", {}).get("best_val_si_sdr") is not None
        ]
        if runs:
            first = min(runs, key=lambda c: c["cell"]["seed"])
            found.append((default if value is None else value, first))
    if len(found) < 2:  # the main cell alone, or sweep cells without it: nothing was compared
        return []
    best = max(found, key=lambda vf: vf[1]["train"]["best_val_si_sdr"])[0]
    label = mode if fraction == 1 else f"{mode} {round(fraction * 100)}%"
    return [
        {
            "method": label,
            "setting": f"{field} = {value:g}"
            + (" (main grid)" if c["cell"].get(field) is None else ""),
            "seed": c["cell"]["seed"],
            "best validation SI-SDR": c["train"]["best_val_si_sdr"],
            "test SI-SDR": round(c["si_sdr"], 3),
            "chosen on validation": value == best,
        }
        for value, c in found
    ]


def claims(cells: list[dict], bounds: dict, conditioning: str) -> dict:
    """The paper's claims, decided on SI-SDR by paired statistics on the same test mixtures
    (``wsas.lab.stats``): each has the difference, its 95 % interval and a verdict (holds, fails,
    or inconclusive when the interval straddles the threshold). Claim (a) compares the two
    methods on deep conditioning when those cells exist (the paper's U-Net), else on the main
    conditioning; where both were also trained longer on 4-source mixtures (``Cell.steps``, the
    first seed only), it is decided at that budget too, beside the verdict (which reads the
    preset's budget and every seed)."""
    main = {"conditioning": conditioning, "clean_fraction": 1.0}
    deep = "deep" if _matching(cells, mode="weak", conditioning="deep") else conditioning
    a = {
        f"{n}_sources": _decide(
            _items(_matching(cells, mode="weak", sources=n, conditioning=deep)),
            _items(_matching(cells, mode="mix-and-separate", sources=n, conditioning=deep)),
            2.0,
        )
        for n in (3, 4)
    }
    verdicts = {d["verdict"] for d in a.values()}
    overall = (
        "fails"
        if "fails" in verdicts
        else "holds"
        if verdicts == {"holds"}
        else "not run"
        if verdicts == {"not run"}
        else "inconclusive"
    )
    longer = _at_longer_budgets(
        cells, ("weak", "mix-and-separate"), 2.0, sources=4, conditioning=deep
    )
    a |= {f"4_sources_{k}_steps": d for k, d in longer.items()}
    supervised = _items(_matching(cells, mode="supervised", sources=2, **main))
    oracle = (
        np.array([bounds["oracle_irm"]["items"]["si_sdr"]])
        if "items" in bounds.get("oracle_irm", {})
        else None
    )
    semi = _items(
        _matching(cells, mode="semi", sources=2, clean_fraction=0.05, conditioning=conditioning)
    )
    return {
        "a_weak_beats_mix_and_separate_by_2dB_at_3_4_sources": {
            "verdict": overall,
            "conditioning": deep,
            **a,
        },
        "b_weak_reaches_95pct_of_supervised": _decide(
            _items(_matching(cells, mode="weak", sources=2, conditioning=conditioning)),
            supervised,
            0.0,
            weight=0.95,
        ),
        "c_semi_5pct_beats_supervised_100pct": _decide(semi, supervised, 0.0),
        "d_supervised_within_3dB_of_oracle_mask": _decide(oracle, supervised, 3.0, "<="),
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
                f"{weak[n] - ms[n]:+.2f} dB with {n}-source training mixtures "
                f"(paper {paper_weak[n] - paper_ms[n]:+.1f})"
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
                f"{mode} ({n} sources, {conditioning}) trained {row['steps']} steps: "
                f"{row['sdr']:.2f} dB, {row['sdr'] - row['sdr_preset_steps']:+.2f} dB over the "
                "same seeds at the preset's steps."
            )
    return out


def _position(report: dict) -> str:
    """A cell's grid position: its fields but the seed, named like the cell."""
    return Cell.from_report(report["cell"]).position


def _by_position(cells: list[dict]) -> dict[str, list[dict]]:
    """The cells grouped by grid position (one per seed), in the order they come."""
    positions: dict[str, list[dict]] = {}
    for c in cells:
        positions.setdefault(_position(c), []).append(c)
    return positions


def _said(d: dict) -> str:
    return f"{d['difference_db']:+.2f} dB [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"


def reading(reports: list[dict], bounds: dict, decisions: dict[str, dict]) -> list[str]:
    """What the numbers say, in sentences computed from them: each decision (headroom, claims,
    ablations) with its paired interval, which grid positions clear the class-template mask
    (mean SI-SDR over seeds), the spread between seeds, and the plateau check."""
    out = []
    flat = {}  # claim (a) nests one decision per training-mixture size (and longer budget)
    for name, d in decisions.items():
        nested = {
            f"{name} ({k})": v for k, v in d.items() if isinstance(v, dict) and "verdict" in v
        }
        flat |= nested or {name: d}
    for name, d in flat.items():
        if d.get("verdict") in ("holds", "fails", "inconclusive") and "difference_db" in d:
            out.append(
                f"{name.replace('_', ' ')}: {_said(d)} SI-SDR (threshold "
                f"{d['direction']} {d['threshold_db']:g} dB): {d['verdict']}."
            )
    positions = _by_position(reports)
    means = {p: float(np.mean([r["si_sdr"] for r in rs])) for p, rs in positions.items()}
    template = bounds.get("class_template", {}).get("si_sdr")
    if template is not None:
        above = [f"{p} ({m:.2f})" for p, m in means.items() if m > template]
        below = [f"{p} ({m:.2f})" for p, m in means.items() if m <= template]
        out.append(
            f"Above the class-template mask ({template:.2f} dB SI-SDR): "
            f"{', '.join(above) or 'none'}; at or below it: {', '.join(below) or 'none'}."
        )
    spreads = {
        p: float(np.std([r["si_sdr"] for r in rs], ddof=1))
        for p, rs in positions.items()
        if len(rs) > 1
    }
    if spreads:
        lo, hi = min(spreads, key=spreads.get), max(spreads, key=spreads.get)
        out.append(
            f"Between seeds, a cell's SI-SDR has a standard deviation of {spreads[lo]:.2f} dB "
            f"({lo}) to {spreads[hi]:.2f} dB ({hi})."
        )
    gains = {
        p: [r.get("train", {}).get("last_quarter_gain_db") for r in rs]
        for p, rs in positions.items()
    }
    gains = {p: float(np.mean(g)) for p, g in gains.items() if None not in g}
    if gains:
        rising = [f"{p} ({g:+.2f})" for p, g in gains.items() if g > 0.2]
        falling = [f"{p} ({g:+.2f})" for p, g in gains.items() if g < -0.2]
        clauses = [f"still rising by more than 0.2 dB for {', '.join(rising)}"] if rising else []
        clauses += [f"falling by more than 0.2 dB for {', '.join(falling)}"] if falling else []
        clauses.append(
            f"within 0.2 dB for the {len(gains) - len(rising) - len(falling)} other positions"
        )
        out.append(
            "Validation SI-SDR over the last quarter of training (mean over seeds): "
            + "; ".join(clauses)
            + "."
        )
    return out


def rank_agreement(reports: list[dict]) -> dict:
    """Spearman rank correlation between SDR and the reference-free CLAPScore improvement across
    cells scored by the grid's critic (a critic-ablation cell is scored by its own TinyCLAP)."""
    from scipy.stats import spearmanr

    reports = [r for r in reports if r.get("cell", {}).get("critic") is None]
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
        positions = {p: [c["si_sdr"] for c in cs] for p, cs in _by_position(cells).items()}
        ax.barh(
            list(positions),
            [np.mean(v) for v in positions.values()],
            xerr=[np.std(v) if len(v) > 1 else 0 for v in positions.values()],
            color="C0",
        )
        for name, style in (("mixture", ":"), ("class_template", "-."), ("oracle_irm", "--")):
            if name in bounds:
                ax.axvline(bounds[name]["si_sdr"], color="k", ls=style, lw=1, label=name)
        ax.set_xlabel("SI-SDR on 2-source test mixtures (dB; mean and spread over seeds)")
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=8)
    else:
        for color, mode in zip(("C0", "C1", "C3"), ("mixit", "mix-and-separate", "weak")):
            for conditioning in ("deep", "late"):
                sel = _matching(cells, mode=mode, conditioning=conditioning, clean_fraction=1.0)
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
            c["sdr"] for c in _matching(cells, mode="supervised", sources=2, clean_fraction=1.0)
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
