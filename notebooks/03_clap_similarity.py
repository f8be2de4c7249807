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
# # 3. The bi-modal similarity loss: CLAP as a teacher
#
# Mix-and-separate only checks that *whole mixtures* come back. The paper adds a check on every
# caption clause: separate $M = X_1 + X_2$ by each clause $c_{ik}$, and ask a frozen
# audio-language model (CLAP) whether the estimate sounds like its clause and unlike the others.
#
# With CLAP audio embeddings $a_k$ of the $K$ clause estimates and text embeddings $t_j$ of the
# clauses, the similarity loss is a cross-entropy over the $K \times K$ matrix
#
# $$\mathcal L_{sim} = -\frac{1}{K} \sum_k \log \frac{\exp(\tau\, a_k^\top t_k)}{\sum_j \exp(\tau\, a_k^\top t_j)},$$
#
# and two reconstruction terms keep the estimates honest: the mixture-level term of chapter 1,
# and a consistency term asking the $\alpha$-weighted clause estimates to add back up to their
# mixture, $\sum_k \alpha_{ik}\, f(M, c_{ik}) \odot |M| \approx |X_i|$. In total
# $\mathcal L = 0.5\, \mathcal L_{sim} + 5\, (\mathcal L_{cons} + \mathcal L_{mix})$.
#
# Fairness: our offline CLAP (TinyCLAP) is pretrained on its own split of the corpus, with its
# own seeds and material, disjoint from every clip the separators train and are tested on, as
# LAION-CLAP was pretrained on other data than the paper's benchmarks.

# %% tags=["parameters"]
PRESET = "smoke"  # "tiny" on a laptop, "paper" on a GPU
STEPS = 40  # training steps per model: tiny 300, paper 100000
WORK = "../work/book"
REPO_URL = ""  # on Colab: where to pip-install wsas from

# %%
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("wsas") is None and REPO_URL:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"], check=True)

import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Audio, Markdown, display

from wsas.clap import load_clap
from wsas.clap.pretrain import evaluate_clap
from wsas.data.datasets import load_embedded
from wsas.data.mixing import fixed_pairs
from wsas.plots import similarity_matrix, spectrogram_row
from wsas.presets import get_preset
from wsas.lab.grid import Cell
from wsas.lab.reproduce import prepare, run_cell
from wsas.results import markdown_table
from wsas.separate import Separator

preset = get_preset(PRESET)
corpus, clap_ckpt = prepare(preset, WORK, progress=False)
clap = load_clap("tiny", str(clap_ckpt))
print(json.dumps(evaluate_clap(clap, corpus), indent=1))

# %% [markdown]
# ## What CLAP measures
# Rows: test clips; columns: label prompts. A well-trained CLAP puts its largest value on the
# diagonal; the smoke preset trains it for a minute, the tiny preset reaches ~99 % zero-shot
# accuracy.

# %%
test = load_embedded(corpus, "test")
PROMPTS = test.prompts  # the label queries travel with the data
pick = [int((test.labels == c).nonzero()[0]) for c in range(6)]
sims = clap.similarity(test.waves[pick], test.sr, list(PROMPTS[:6])).detach().numpy()
fig, ax = plt.subplots(figsize=(5, 4))
similarity_matrix(ax, sims, [test.class_names[c] for c in range(6)], list(PROMPTS[:6]), "cosine similarity")
plt.show()

# %% [markdown]
# ## Gradients flow through the frozen CLAP
# The weak loss trains the separator *through* CLAP's audio tower: the waveform gets a gradient,
# CLAP's weights do not.

# %%
wave = (test.waves[pick[:1]] * 0.5).requires_grad_()
clap.similarity(wave, test.sr, [PROMPTS[0]]).sum().backward()
print("gradient norm on the waveform:", float(wave.grad.norm()))
print("CLAP parameters with gradients:", sum(p.grad is not None for p in clap.parameters()))

# %% [markdown]
# ## Weak vs mix-and-separate, trained on the same mixtures and captions

# %%
runs = Path(WORK) / preset.name / "runs"
reports = [run_cell(Cell(mode, 2, conditioning=preset.conditioning), preset, corpus, clap_ckpt, runs,
                    progress=False, steps=STEPS) for mode in ("mix-and-separate", "weak")]
display(Markdown(markdown_table([{k: r[k] for k in ("mode", "sdr", "sir", "sar", "sdri", "clapscore_improvement")}
                                 for r in reports])))

# %% [markdown]
# ## Listen: the weakly supervised separator on a test mixture

# %%
sep = Separator.from_checkpoint(Path(reports[1]["run"]) / "checkpoint.safetensors")
pair = fixed_pairs(test, 4)
mix = pair.mixtures[0, 0]
queries = [PROMPTS[int(c)] for c in pair.labels[0, 0]]
stems = sep(mix, test.sr, queries)
spectrogram_row({"mixture": mix, **stems}, test.sr)
plt.show()
for name, wave in {"mixture": mix, **stems}.items():
    display(Markdown(f"**{name}**"), Audio(wave.numpy(), rate=test.sr))

# %% [markdown]
# The model above trained for a few steps: it shows the code, not what the method can do. The
# weak model shipped with wsas (`wsas models`; its card, printed below, says what it was trained
# on and how it scores) separates the same mixture with the same queries; chapter 6 compares
# every shipped model on many mixtures.

# %%
from wsas.pretrained import cards

card = cards()["weak"]
print(f"{card['trained_on']}; test SI-SDR {card['test_si_sdr_db']['mean']} dB, "
      f"SDR {card['test_sdr_db']['mean']} dB")
shipped = Separator.from_pretrained("weak")
shipped_stems = shipped(mix, test.sr, queries)
spectrogram_row({"mixture": mix, **shipped_stems}, test.sr)
plt.show()
for name, wave in shipped_stems.items():
    display(Markdown(f"**{name}** (shipped weak model)"), Audio(wave.numpy(), rate=test.sr))

# %% [markdown]
# ## Beyond the paper: caption-driven separation
# `separate_caption` parses a caption and returns one stem per clause; stems plus the residual
# add up to the mixture exactly (the consistency idea, used at inference). From the shell:
# `wsas separate MIX.wav --caption "a violin plays while a dog barks"` writes the stems and a
# JSON manifest with each stem's CLAP score and energy share.

# %%
caption = f"{test.phrasings[int((test.labels == pair.labels[0, 0, 0]).nonzero()[0])][0]} while " \
          f"{test.phrasings[int((test.labels == pair.labels[0, 0, 1]).nonzero()[0])][1]}"
stems = sep.separate_caption(mix, test.sr, caption)
print(caption, "->", list(stems))
print("stems + residual == mixture:", torch.allclose(sum(stems.values()) + sep.residual, mix, atol=1e-5))
print("CLAP score of each stem:", {k: round(v, 3) for k, v in sep.clap_scores(stems, test.sr).items()})

# %% [markdown]
# ## Beyond the paper: query by example
# CLAP puts sounds and texts in one space, so a short recording of the wanted sound can stand in
# for its name: its CLAP *audio* embedding becomes the query. Here the shipped weak model is
# asked for the first source by its label and by another test clip of the same class
# (`sep.separate(wave, sr, query_audio={name: (example, sr)})`; from the shell,
# `wsas separate MIX.wav -Q example.wav`).

# %%
from wsas.lab.query_kinds import example_clips

example = example_clips(test, pair.sources[:1, 0], pair.labels[:1, 0])[0, 0]
both = shipped.separate(mix, test.sr, [queries[0]], query_audio={"by example": (example, test.sr)})
for name, wave in {"the example": example, **both}.items():
    display(Markdown(f"**{name}**"), Audio(wave.numpy(), rate=test.sr))

# %% [markdown]
# On tiny's 120 fixed test mixtures, each source queried both ways (made by
# `python -m wsas.lab.query_kinds wsas/pretrained/*.safetensors --data TINY_CORPUS`):

# %%
rows = json.loads(Path("../results/tiny/query-by-example/shipped.json").read_text())["rows"]
display(Markdown(markdown_table([
    {"model": Path(r["run"]).stem, "text SI-SDR": r["text_si_sdr"][0],
     "example SI-SDR": r["audio_si_sdr"][0],
     "example - text [95 % CI]": "{:+.2f} [{:+.2f}, {:+.2f}]".format(*r["audio_minus_text_si_sdr"])}
    for r in rows], 2)))

# %% [markdown]
# The models never heard an audio query in training; the table says how far the CLAP space
# carries them. Read it with its intervals: a difference whose interval excludes zero is a
# difference on these mixtures and these models, nothing more general.

# %% [markdown]
# ## Try it (interactive)
# In a live notebook, type a query and hear what the shipped weak separator pulls out of the
# mixture. The static book cannot run Python, so it shows the first query's result.

# %%
import ipywidgets as widgets

box, out = widgets.Text(value=queries[0], description="query"), widgets.Output()


def on_submit(change=None):
    with out:
        out.clear_output()
        display(Audio(shipped(mix, test.sr, box.value)[box.value].numpy(), rate=test.sr))


box.on_submit(on_submit)
display(box, out)
# the first query's result, shown directly: filling the Output widget while papermill runs the
# chapter can leave its kernel waiting forever (seen once in CI), so only typed queries use it
display(Audio(shipped(mix, test.sr, box.value)[box.value].numpy(), rate=test.sr))

# %% [markdown]
# ## Reference-free evaluation: CLAPScore
# Real recordings have no clean references, so SDR cannot be computed. CLAPScore scores each
# estimate by its CLAP similarity to its clause, relative to the mixture's own similarity; the
# *leakage* is an estimate's similarity to the other clauses. Chapter 5 reports how well
# CLAPScore improvement ranks the Table 1 runs compared with SDR. Caveat: scoring with the
# same CLAP that trained the weak model favours it.
