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
# # 2. From captions to one query per sound
#
# The weak objective needs one text query per sound source in a mixture. Captions say it in
# prose: *"A man speaks while a dog barks and rain falls"* holds three sources. `wsas.captions`
# splits captions with rules on connectives, as the paper does, made robust on real AudioCaps
# phrasing: "and" joins two sources only when a new subject starts ("a man speaks and laughs"
# is one source), back-references ("the engine fades") merge, and "silence" is not a source.

# %% tags=["parameters"]
GOLD = "../tests/data/gold_captions.tsv"  # 160 real AudioCaps captions labelled by hand
HELDOUT = "../tests/data/heldout_captions.tsv"  # 79 AudioCaps validation captions, labelled before parsing
SHOW_ERRORS = 10

# %%
import csv
import time

from collections import Counter

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from wsas.captions import evaluate_parser, parse, slots
from wsas.results import markdown_table

for caption in ["A man speaks while a dog barks and rain falls", "A man speaks and laughs",
                "Adults and children speak nearby while a crowd rumbles",
                "A motor vehicle engine is running and is revved, squealing occurs, and the engine fades",
                "Brief silence followed by a loud explosion"]:
    print(f"{caption!r:95} -> {parse(caption)}")

# %% [markdown]
# ## How good is it on real captions?
# The gold set holds 160 AudioCaps training captions (MIT licence), each labelled by hand with
# its sources. We report how often the *number* of sources is right, and clause-level F1 where a
# predicted clause matches a gold one when they share most content words (Jaccard >= 0.5).
# The rules were written while looking at this set, so read it as a development score. The
# held-out set is 79 captions drawn at random from AudioCaps *validation*, labelled by hand
# before the parser saw them and never used to change a rule: that is the score to quote.

# %%
def read_pairs(path):
    with open(path, newline="") as f:
        return [(r["caption"], r["clauses"].split("|")) for r in csv.DictReader(f, delimiter="\t")]


gold, heldout = read_pairs(GOLD), read_pairs(HELDOUT)
display(Markdown(markdown_table([{"set": "development (train captions)", **evaluate_parser(gold)},
                                 {"set": "held-out (validation captions)", **evaluate_parser(heldout)}])))
started = time.perf_counter()
for _ in range(20):
    for caption, _ in gold:
        parse(caption)
print(f"{20 * len(gold) / (time.perf_counter() - started):,.0f} captions per second")

# %% [markdown]
# Where the count goes wrong, held-out captions first. The held-out misses are mostly commas and
# "and" *inside* one noun phrase ("a loud, long burp", "pots and pans"), a second verb with no
# subject read as a new source ("water drains and sputters"), and connectives the rules do not
# know ("thereafter"). The gap between the two sets is the price of rules tuned on what they
# were tested on. A wrong count is not fatal in training: `slots` fits any number of clauses to
# the K output slots, but a broken clause ("a loud") is a poor CLAP target.

# %%
errors = [(c, g, parse(c)) for c, g in heldout + gold if len(parse(c)) != len(g)]
display(Markdown(markdown_table([{"caption": c, "gold": " / ".join(g), "parsed": " / ".join(p)}
                                 for c, g, p in errors[:SHOW_ERRORS]])))

# %%
counts = Counter(len(parse(c)) for c, _ in gold)
fig, ax = plt.subplots(figsize=(4, 2.5))
ax.bar(sorted(counts), [counts[k] for k in sorted(counts)])
ax.set_xlabel("sources in the caption (parsed)")
ax.set_ylabel("captions")
plt.show()

# %% [markdown]
# ## Fixed slots and the alpha weights
# Training batches need the same number $K$ of clause slots for every mixture. Fewer clauses
# are padded by repetition and each copy gets $\alpha = 1/\text{copies}$, so that the weighted
# sum of slot estimates still adds up to the mixture:
#
# $$\sum_{k=1}^{K} \alpha_k\, \hat S_k \approx |X| .$$

# %%
for k in (2, 3, 5):
    print(k, slots(parse("A violin plays while a dog barks"), k))
