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
# synthetic corpus. `tiny` has the 2-source column (and 3-/4-source unsupervised cells), `small`
# the full grid on a larger corpus, with 1 s clips, plus deep vs late conditioning.

# %% tags=["parameters"]
RESULTS = "../results"
PRESETS = ["tiny", "small", "paper"]  # which results/<preset>/ to show, where present
SWEEP_SOURCES = [2, 3]  # the papermill sweep below: sources per training mixture
SWEEP_PRESET = "smoke"
SWEEP_STEPS = 10
WORK = "../work/book"

# %%
import json
from pathlib import Path

from IPython.display import Image, Markdown, display

from wsas.results import markdown_table

summaries = {}
for preset in PRESETS:
    out = Path(RESULTS) / preset
    if not (out / "summary.json").is_file():
        display(Markdown(f"`{out}/summary.json` is missing: run `wsas reproduce --preset {preset}` to add it."))
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
# ## Which code made these files
# Each file names its commit. The `small` results and the 3-/4-source `tiny` cells were made
# before the changes of issue 18: a constant learning rate, the last iterate evaluated, SDR
# only, one seed, late conditioning for claim (a); they carry no per-mixture scores, so the
# verdicts that need them say "not run". The 2-source `tiny` column and `tiny-var` were re-made
# by the current code (`results/tiny/compared_with_committed.json` lists how far each `tiny`
# cell moved: from -0.87 to +0.87 dB SI-SDR, one seed each). The current code trains with a warm-up and cosine schedule,
# evaluates each run's best-validation model, reports SI-SDR beside SDR with 95 % intervals over
# seeds, adds the class-template bound, and decides each claim from paired intervals on the same
# test mixtures (holds, fails or inconclusive). Files made by it show a `verdict` per claim;
# older ones show `holds`. `make reproduce` re-makes them and lists how far each cell moved.

# %% [markdown]
# ## Reading the results
# The bullets under each preset's tables ("What the numbers say about claim (a)") are computed
# from the result files; this is what we make of them (`small`, 1 seed, so read differences under
# about 0.3 dB as noise).
#
# - **Re-made `tiny` (one seed, late conditioning).** Supervised training now leads
#   mix-and-separate by 1.39 dB SI-SDR [0.83, 1.96] and supervised training on 5 % of the clips
#   by 0.76 dB [0.18, 1.35]: the headroom the claims need is there. But only the supervised and
#   PIT models clear the class-template mask (4.04 dB SI-SDR); the weak, mix-and-separate, MixIT,
#   semi and 5 % models stay below it, and claims (b), (c) and (d) fail with intervals clear of
#   their thresholds. On `tiny-var` (timbre varying within a class) mix-and-separate still
#   matches supervised training (-0.29 dB [-0.90, 0.33]). In their last quarter of training the
#   supervised, PIT and 5 % models still gained 0.3-0.6 dB validation SI-SDR (stopped before
#   their plateau), mix-and-separate, weak and semi had flattened (under 0.1 dB) and MixIT lost
#   0.39 dB.
# - **Conditioning decides claim (a).** With *late* conditioning (the query only reweights the
#   decoder's last features; the CPU presets use it for their main tables because it is ~3x
#   cheaper per weak step), the bi-modal weak objective does no better than mix-and-separate,
#   and claim (a) fails in `tiny` and `small`. With the paper's *deep* conditioning (FiLM at
#   every U-Net level) the weak objective gains about a decibel at every training-mixture size
#   and leads mix-and-separate at every size, while deep conditioning does not help
#   mix-and-separate. Our reading: the CLAP-similarity term asks for *different* outputs for the
#   different clauses of one mixture, which a query acting on every level can deliver and a
#   final reweighting barely can. The lead is still smaller than the paper's ~2.4 dB.
# - **Longer training lifts both, not the gap.** Trained three times longer on 4-source mixtures
#   (late conditioning), mix-and-separate and the weak objective each gain well over a decibel and
#   stay level with each other: at these budgets every model is still under-trained, but the
#   weak objective's missing lead is not a matter of steps.
# - **Mix-and-separate degrades less than in the paper.** Its train/test mismatch (trained with
#   whole-caption queries, tested with one source's label) is milder here: TinyCLAP's text side
#   is a sentence encoder fitted to our phrasings, and a multi-source caption's embedding still
#   points towards each of its sources.
# - **MixIT's numbers use an oracle.** Its 2N unconditional outputs are matched to the references
#   by the best permutation, which no user has at inference, and it cannot be queried by text at
#   all. It is a reference, not a competitor on equal terms; unlike the paper's, ours is strong
#   (on these synthetic, well-separated classes) and does not fall steadily with N.
# - **The CPU budgets are step-bound, not data-bound.** In `small`, supervised training on 5 % of
#   the clean clips matches training on all of them: at 300 steps of 16 mixtures no model exhausts
#   even the small subset, so Table 2's question (how much clean data is needed) is barely posed.
#   Semi-supervision still adds to the 5 % model, so claim (c) holds, weakly.
# - **Far from the mask ceiling.** Claim (d) fails by more than 10 dB: the oracle ratio mask
#   reaches ~18 dB on these mixtures, 8-channel U-Nets trained for minutes reach 6-7 dB. The
#   `paper` preset (32 channels, 7 levels, 100k steps) is the real test of (d) and needs a GPU.

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
