# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Results: the paper's tables, reproduced on the embedded corpus
#
# Everything on this page is read from `results/`, written by `wsas reproduce --preset tiny`
# (`make reproduce`) and `wsas reproduce --preset small --jobs 2` on the machine named in each
# file's provenance stamp. Compare shapes, not absolute numbers: the paper trains on MUSIC for
# 200 epochs on 8 GPUs; `tiny` and `small` train each model for minutes on 2 CPU cores on a
# synthetic corpus. `tiny` has the 2-source column, Table 2's 5 % row, the CLAP-term ablation
# and the sweeps, three seeds per claim cell, tested on 6.4-s clips (BSS Eval's 512-tap filter
# is 1 % of a clip); `small` has the full grid on a larger corpus (1-s training clips, the same
# 6.4-s test clips, three seeds for the cells the verdicts read and one for the rest): 2-, 3- and
# 4-source training mixtures, deep vs late conditioning
# (claim (a) is decided on deep, the paper's U-Net) and 4-source cells trained 3x longer on both
# conditionings (at seed 0: does claim (a)'s verdict survive longer training?).
# `tiny-long` is tiny's claim grid trained 4x longer (1200 steps, near the plateau of tiny's
# longest cells), three seeds: the grid that should decide claims (b)-(d) on this corpus.

# %% tags=["parameters"]
RESULTS = "../results"
PRESETS = ["tiny", "tiny-long", "small", "paper"]  # which results/<preset>/ to show, where present
SWEEP_SOURCES = [2, 3]  # the papermill sweep below: sources per training mixture
SWEEP_PRESET = "smoke"
SWEEP_STEPS = 10
WORK = "../work/book"
METRICS_PAIRS = 8  # test pairs of `tiny` for the section on the field's SDRs

# %%
import json
from pathlib import Path

from IPython.display import Image, Markdown, display

from wsas.results import markdown_table

summaries = {}
for preset in PRESETS:
    out = Path(RESULTS) / preset
    if not (out / "summary.json").is_file():
        display(Markdown(f"`{out}/summary.json` is missing: run `wsas reproduce --preset {preset}` "
                         "(add `--resume` to continue an interrupted run) to make it."))
        continue
    summaries[preset] = summary = json.loads((out / "summary.json").read_text())
    display(Markdown((out / "tables.md").read_text()))
    print("made on", summary["provenance"]["machine"], "at commit", summary["provenance"]["git_commit"],
          f"({summary['train_seconds_all_cells'] / 60:.1f} min of training in all)")

# %% [markdown]
# ## The paper's claims, checked

# %%
for preset, summary in summaries.items():
    display(Markdown(f"**{preset}**"))
    rows = []
    for claim, v in summary["claims"].items():  # verdicts (new format) or holds/detail (older files)
        said = v.get("verdict") or {True: "holds", False: "fails"}.get(v.get("holds"), "not run")
        numbers = v.get("detail", {k: x for k, x in v.items() if k != "verdict"})
        rows.append({"claim": claim, "verdict": said, "numbers": json.dumps(numbers)})
    display(Markdown(markdown_table(rows)))
    if (Path(RESULTS) / preset / "sdr_vs_sources.png").is_file():
        display(Image(str(Path(RESULTS) / preset / "sdr_vs_sources.png")))

# %% [markdown]
# ## Reading the results
# The last section of each preset's tables, "What the numbers say", is computed from its results
# by `wsas.lab.report.reading` (every decision with its paired 95 % interval, which grid positions
# clear the class-template mask, how much seeds disagree, whether training had plateaued). What
# we make of them follows; for presets made by the current code the sentences are filled in from
# the same numbers, so they change when the results do.


# %%
def said(d: dict) -> str:
    """A decision as text: difference, 95 % interval and verdict."""
    if "difference_db" not in d:
        return d.get("verdict", "not run")
    low, high = d["ci95"]
    return f"{d['difference_db']:+.2f} dB [{low:+.2f}, {high:+.2f}], {d['verdict']}"


for preset, summary in summaries.items():
    if "headroom" not in summary:  # made before issue 18's changes
        display(Markdown(f"**{preset}** was made by older code (SDR only, one seed, claim (a) on "
                         f"{summary['preset']['conditioning']} conditioning, short test clips): "
                         "its verdicts above are not decided by paired SI-SDR intervals."))
        continue
    room, claims = summary["headroom"], summary["claims"]
    lines = [
        f"**{preset}.** Headroom first, since without it no weak method can show its worth: "
        f"supervised minus mix-and-separate is {said(room['supervised_minus_mix_and_separate'])}; "
        f"supervised on all clips minus on 5 % is {said(room['supervised_minus_supervised_5pct'])}."
    ]
    for key, d in room.items():
        if key.endswith("_steps"):
            steps = key.split("_")[-2]
            lines.append(f"Trained {steps} steps instead of {summary['preset']['train_steps']}, "
                         f"supervised minus mix-and-separate is {said(d)}.")
    ablation = summary.get("ablations", {}).get("clap_term_weak_minus_weak_without_it")
    if ablation and "difference_db" in ablation:
        lines.append(f"The weak objective with its CLAP term minus without it: {said(ablation)}; "
                     "a term that helped would show a positive interval.")
    for key, d in summary.get("ablations", {}).items():
        if key.startswith("clap_hears_") and "difference_db" in d:
            seconds = key.split("_")[2]
            lines.append(f"A critic hearing only the loudest {seconds} of each clause estimate "
                         f"(a cheaper step, `--clap-seconds`) minus one hearing all of it: "
                         f"{said(d)}.")
        if key.endswith("_critic_weak_minus_weak") and "difference_db" in d:
            size = key.split("_")[0]
            grid_critic = summary["preset"].get("critic", "full")
            lines.append(f"Weak trained with the {size} TinyCLAP (`wsas clap pretrain --size "
                         f"{size}`) minus with the grid's {grid_critic} one: {said(d)}.")
        if key.startswith("clause_") and "difference_db" in d:
            target = key.split("_")[1]
            lines.append(f"Weak with the `{target}` magnitude target for its clause estimates "
                         f"(`--clause-level {target}`, not in the paper) minus without it: "
                         f"{said(d)}.")
    a = next(v for k, v in claims.items() if k.startswith("a_"))
    sizes = [f"{n.split('_')[0]}-source training mixtures"
             + (f" trained {n.split('_')[2]} steps (first seed)" if n.endswith("_steps") else "")
             + f" {said(d)}" for n, d in a.items() if isinstance(d, dict) and "difference_db" in d]
    lines.append(f"Claim (a), weak beats mix-and-separate by 2 dB ({a.get('conditioning')} "
                 f"conditioning): {'; '.join(sizes) or a['verdict']}. Claims "
                 + "; ".join(f"({k[0]}) {said(v)}" for k, v in claims.items() if not k.startswith("a_"))
                 + ".")
    for row in summary.get("sweeps", []):
        if row["chosen on validation"]:
            lines.append(f"Validation chooses {row['setting']} for {row['method']} "
                         f"(best validation SI-SDR {row['best validation SI-SDR']:.2f} dB).")
    display(Markdown(" ".join(lines)))

# %% [markdown]
# Beside the decisions, each preset's numbers next to the paper's (SDR, the paper's metric):
# the gap between the two queried methods at each training-mixture size, how each method
# changes from 2- to 4-source mixtures, deep minus late conditioning, and longer training.
# MixIT's numbers use an oracle (its 2N unconditional outputs are matched to the references by
# the best selection, which no user has at inference): it is a reference, out of the ranking.

# %%
for preset, summary in summaries.items():
    if summary.get("findings"):
        display(Markdown(f"**{preset}.** " + " ".join(summary["findings"])))

# %% [markdown]
# ## Which code made these files
# Each cell file names the commit that trained it; a preset whose cells come from several
# commits says so here. Files made before issue 18's changes (constant learning rate, last
# iterate evaluated, SDR only, one seed, 1- or 2-s test clips) carry no per-mixture scores, so
# the verdicts that need them say "not run".

# %%
for preset in summaries:
    cells_dir = Path(RESULTS) / preset / "cells"
    made = {}
    for path in sorted(cells_dir.glob("*.json")):
        cell = json.loads(path.read_text())
        key = (cell.get("provenance", {}).get("git_commit"), cell.get("test_clip_seconds", "?"))
        made.setdefault(key, []).append(path.stem)
    for (commit, seconds), names in made.items():
        print(f"{preset}: {len(names)} cells made at commit {commit}, test clips of {seconds} s")

# %% [markdown]
# ## Does the reference-free CLAPScore rank methods like SDR?
# Spearman rank correlation, across the runs above, between SDR and the CLAPScore improvement
# (and minus the cross-query leakage). 1 means the same ranking.

# %%
for preset, summary in summaries.items():
    print(preset, json.dumps(summary["clapscore_vs_sdr"]))
    display(Markdown(markdown_table([{k: c[k] for k in ("name", "sdr", "clapscore_improvement", "leakage")}
                                     for c in summary["cells"]])))

# %% [markdown]
# ## Every "SDR" the field reports, on the same estimates
# Papers in this area print numbers called SDR that are not the same quantity, so they do not
# compare across papers. For an estimate $\hat s$ of a reference $s$ (`wsas.metrics` computes
# each; `wsas evaluate` and the tables above report all of them):
#
# - **BSS Eval v3 SDR** (the paper's; mir_eval's `bss_eval_sources`): $\hat s$ is projected on
#   512 delays of all references; the part explained by a filter of its own reference is the
#   target. A wrong level and any short filter (an equaliser) cost nothing.
# - **SI-SDR** (Le Roux et al. 2019; AudioSep, CLAPSep): the target is $\alpha s$ with the
#   least-squares gain $\alpha$: a wrong level costs nothing, a filter does.
# - **SNR-style SDR** (AudioSep's `calculate_sdr`, the DCASE 2024 task 9 evaluator):
#   $10\log_{10} \lVert s\rVert^2 / \lVert s - \hat s\rVert^2$: no gain, no filter, so
#   an estimate at half its level scores at most 6 dB; a silent one scores exactly 0 dB.
#   It can exceed SI-SDR on poor estimates: with $\rho$ the correlation of $\hat s$ and $s$,
#   SI-SDR is $10\log_{10}\rho^2/(1-\rho^2)$ while the SNR-style SDR of the best-scaled
#   estimate is $10\log_{10} 1/(1-\rho^2)$.
# - **...i** (SDRi, SI-SDRi, SNR-SDRi): the same metric minus the unprocessed mixture's against
#   the same reference. The authors' own averaging also drops mixtures with a near-silent
#   prediction (`wsas evaluate --drop-silent`, which reports how many it dropped).
#
# Below, the shipped `weak` model separates a few of `tiny`'s fixed test pairs (rendered on
# their own, as in chapter 6; the first 2.048 s of each clip, the training clip length, to keep
# the page fast), and its estimates, the same estimates at half their level, the mixture itself
# and the oracle ratio mask are scored by every metric.

# %%
from dataclasses import replace

import torch

from wsas.data.datasets import load_embedded
from wsas.data.mixing import fixed_pairs
from wsas.data.synth import build_corpus, corpus_matches
from wsas.evaluate import oracle_irm, score
from wsas.models.queries import separate_pairs
from wsas.presets import get_preset
from wsas.separate import Separator

tiny = get_preset("tiny")
only_test = {split: n if split == "test" else 0 for split, n in tiny.clips_per_class.items()}
test_corpus = Path(WORK) / "listening" / "tiny-test"  # chapter 6 renders the same clips
if not corpus_matches(test_corpus, tiny):
    build_corpus(replace(tiny, clips_per_class=only_test), test_corpus, progress=False)
test = load_embedded(test_corpus, "test")
test = replace(test, waves=test.waves[:, : tiny.clip_samples])
pairs = fixed_pairs(test, METRICS_PAIRS, 0)
weak = Separator.from_pretrained("weak")
with torch.no_grad():
    weak_estimates = separate_pairs(weak.model, weak.embed, pairs, test.prompts)
estimates = {
    "shipped weak model": weak_estimates,
    "the same at half level": 0.5 * weak_estimates,
    "the mixture itself": pairs.mixtures[:, 0, None].expand_as(weak_estimates),
    "oracle ratio mask": oracle_irm(pairs, tiny.n_fft, tiny.hop),
}
COLUMNS = {"sdr": "BSS Eval SDR", "sdri": "SDRi", "si_sdr": "SI-SDR", "si_sdri": "SI-SDRi",
           "snr_sdr": "SNR-style SDR", "snr_sdri": "SNR-SDRi"}
rows = []
for name, est in estimates.items():
    r = score(est, pairs)
    sdrs = [r[k] for k in ("sdr", "si_sdr", "snr_sdr")]
    rows.append({"estimate": name, **{label: round(r[k], 2) + 0.0 for k, label in COLUMNS.items()},
                 "spread of the three SDRs": max(sdrs) - min(sdrs)})
display(Markdown(f"Mean over {METRICS_PAIRS} test pairs (both sources of each), dB:"))
display(Markdown(markdown_table(rows, digits=2)))

# %% [markdown]
# ## A papermill sweep
# Chapter 1 runs as a function of its parameters: here we sweep the number of sources per
# training mixture for mix-and-separate (small settings, so the book builds quickly; set
# `SWEEP_PRESET="tiny"` and `SWEEP_STEPS=300` for meaningful numbers).

# %%
import jupytext
import papermill as pm

rows = []
(Path(WORK) / "sweep").mkdir(parents=True, exist_ok=True)
for n in SWEEP_SOURCES:
    result = Path(WORK) / "sweep" / f"sources{n}.json"
    pm.execute_notebook(jupytext.read("01_mix_and_separate.py"), str(Path(WORK) / "sweep" / f"ch1_{n}.ipynb"),
                        parameters={"PRESET": SWEEP_PRESET, "STEPS": SWEEP_STEPS, "SOURCES": [n], "WORK": WORK,
                                    "RESULTS_JSON": str(result)}, kernel_name="python3", progress_bar=False)
    rows.append({"sources per training mixture": n, "SDR (dB)": json.loads(result.read_text())[str(n)]})
display(Markdown(markdown_table(rows, digits=2)))
