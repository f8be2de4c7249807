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
# # 4. Semi-supervised: a few clean sources plus many captioned mixtures
#
# Clean single-source recordings are rare, captioned mixtures are plentiful. The paper's
# semi-supervised objective adds the weak loss on mixtures to a supervised loss on the clean
# fraction:
#
# $$\mathcal L_{SSL} = \lambda_s\, \mathcal L_{sup}(\text{clean}) + \lambda_u\, \mathcal L_{weak}(\text{mixtures}).$$
#
# The paper's Table 2: supervised training on 5 % of the clean data drops from 8.1 to 2.6 dB
# SDR, while 5 % clean plus mixtures reaches 8.8 dB, above fully supervised training. This
# chapter runs the same sweep on the embedded corpus.

# %% tags=["parameters"]
PRESET = "smoke"  # "tiny" on a laptop, "paper" on a GPU
STEPS = 30  # training steps per model: tiny 300, paper 100000
FRACTIONS = [0.05, 0.25]  # clean fractions for the semi-supervised sweep (the paper: 0.05, 0.1, 0.25, 0.75)
WORK = "../work/book"
REPO_URL = ""  # on Colab: where to pip-install wsas from

# %%
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("wsas") is None and REPO_URL:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from wsas.presets import get_preset
from wsas.lab.grid import Cell
from wsas.lab.reproduce import prepare, run_cell
from wsas.results import markdown_table

preset = get_preset(PRESET)
corpus, clap_ckpt = prepare(preset, WORK, progress=False)
runs = Path(WORK) / preset.name / "runs"


def train(mode, fraction):
    cell = Cell(mode, 2, fraction, preset.conditioning)
    return run_cell(cell, preset, corpus, clap_ckpt, runs, progress=False, steps=STEPS)


rows = [{"training": "supervised 100%", "sdr": train("supervised", 1.0)["sdr"]}]
for fraction in FRACTIONS:
    rows.append({"training": f"supervised {fraction:.0%}", "sdr": train("supervised", fraction)["sdr"]})
    rows.append({"training": f"semi {fraction:.0%}", "sdr": train("semi", fraction)["sdr"]})
display(Markdown(markdown_table(rows, digits=2)))

# %%
fig, ax = plt.subplots(figsize=(5, 3))
for mode, style in (("supervised", "o--"), ("semi", "s-")):
    xs = [f for f in FRACTIONS]
    ys = [next(r["sdr"] for r in rows if r["training"] == f"{mode} {f:.0%}") for f in FRACTIONS]
    ax.plot([100 * x for x in xs], ys, style, label=mode)
ax.axhline(rows[0]["sdr"], color="k", lw=0.8, label="supervised 100%")
ax.set_xlabel("clean fraction (%)")
ax.set_ylabel("SDR (dB)")
ax.legend()
plt.show()

# %% [markdown]
# ## A sweep with papermill
# Every chapter is a papermill notebook, so a parameter grid is one loop. For example, the
# number of sources per training mixture in chapter 1:
#
# ```python
# import papermill as pm, jupytext
# for steps in (200, 400, 800):
#     pm.execute_notebook(jupytext.read("01_mix_and_separate.py"), f"out/steps{steps}.ipynb",
#                         parameters={"PRESET": "tiny", "STEPS": steps}, kernel_name="python3")
# ```
#
# `tests/test_notebooks.py` runs each chapter this way with its small defaults in CI, and the
# sweep table in chapter 5 comes from such a loop.
