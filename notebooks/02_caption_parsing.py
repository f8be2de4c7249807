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
# The rules were written while looking at this set, so read it as a development score.

# %%
with open(GOLD, newline="") as f:
    gold = [(r["caption"], r["clauses"].split("|")) for r in csv.DictReader(f, delimiter="\t")]
scores = evaluate_parser(gold)
display(Markdown(markdown_table([scores])))
started = time.perf_counter()
for _ in range(20):
    for caption, _ in gold:
        parse(caption)
print(f"{20 * len(gold) / (time.perf_counter() - started):,.0f} captions per second")

# %%
errors = [(c, g, parse(c)) for c, g in gold if len(parse(c)) != len(g)]
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
