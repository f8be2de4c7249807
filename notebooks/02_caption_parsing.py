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
HELDOUT = "../tests/data/heldout_captions.tsv"  # 79 validation captions, labelled before parsing
HELDOUT2 = "../tests/data/heldout2_captions.tsv"  # 170 train captions, labelled before parsing
HELDOUT3 = "../tests/data/heldout3_captions.tsv"  # 60 more, drawn after the rules of held-out 2
HELDOUT4 = "../tests/data/heldout4_captions.tsv"  # 170 more, labelled before parsing (issue 19)
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
#
# Four held-out sets measure what happens on captions no rule was written against. Each was
# drawn at random with a fixed seed (`tests/data/draw_heldout.py`) and labelled by hand, one
# clause per sound source, *before* the parser ran on it; the commit history shows the labels
# landing first. Held-out 1 is 79 *validation* captions, held-outs 2-4 are *training* captions
# not in the other sets. A score stays honest only until someone changes a rule after seeing its
# misses, so here is what each set saw (the last column is history: the rules of that time
# scored it, so it cannot be recomputed here):
#
# | set | first parsed with | rules changed after seeing its misses? | count accuracy then |
# |---|---|---|---|
# | held-out 1 (79, val) | the development rules | yes, a few of its misses ("thereafter", "a loud, long burp") are patterns fixed later | 0.873 |
# | held-out 2 (170, train) | the development rules | yes: the current rules were written against its misses | 0.782 (F1 0.915) |
# | held-out 3 (60, train) | the rules held-out 2 taught | no | 0.883 (F1 0.952) |
# | held-out 4 (170, train) | the same rules as held-out 3 | yes: the rules of issue 19 were written against its misses | 0.882 (F1 0.961) |
#
# So the number to quote for unseen captions is the first parse of held-out 3 and 4: both
# 0.88 with the rules of their time, 230 captions together. The table below scores every set
# with the current rules: held-out 2 and 4 score higher because they taught the rules;
# held-out 3 shows whether rules written for held-out 4 carry over to captions they never saw.

# %%
def read_pairs(path):
    with open(path, newline="") as f:
        return [(r["caption"], r["clauses"].split("|")) for r in csv.DictReader(f, delimiter="\t")]


gold, heldout = read_pairs(GOLD), read_pairs(HELDOUT)
heldout2, heldout3, heldout4 = read_pairs(HELDOUT2), read_pairs(HELDOUT3), read_pairs(HELDOUT4)
sets = {
    "development (train captions)": gold,
    "held-out 1 (validation captions)": heldout,
    "held-out 2 (train captions, taught the rules)": heldout2,
    "held-out 3 (train captions, not looked at by a rule)": heldout3,
    "held-out 4 (train captions, taught the rules of issue 19)": heldout4,
}


def wilson(p, n, z=1.96):
    """95 % Wilson score interval of a proportion ``p`` measured on ``n`` captions."""
    centre, half = p + z * z / (2 * n), z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


rows = []
for name, pairs in sets.items():
    scores = evaluate_parser(pairs)
    low, high = wilson(scores["count_accuracy"], len(pairs))
    rows.append({"set": name, **scores, "count 95 % interval": f"{low:.2f}-{high:.2f}"})
display(Markdown(markdown_table(rows)))
started = time.perf_counter()
for _ in range(20):
    for caption, _ in gold:
        parse(caption)
print(f"{20 * len(gold) / (time.perf_counter() - started):,.0f} captions per second")

# %% [markdown]
# What the held-out misses taught the rules, each a pattern rather than a caption: a second verb
# without its own subject continues its source even when the verb is unknown, if it takes the
# same form ("a baby cries and babbles", "frogs croak and vocalize"); a "with"/"over" phrase
# describes the source before when it names a channel or a manner ("speaking over an
# intercom", "with a southern drawl") or the tool of the action ("sawing with a hand saw"); a
# bare list of sounds splits where voice meets non-voice ("female speech and sizzling") or
# things meet people ("some knocks and a man speaking") and stays one source otherwise
# ("hissing and scraping noise"); commas between adjectives do not split ("a loud, long
# burp"); a sentence end is a strong break; "more beeps" after "a beep" is the same source.
# Held-out 4 added: a verb keeps its object or complement ("revving then running idle",
# "clanking around and tapping it"), a passive its second participle ("tapped and rasped");
# "near and far" and "further and further" are one phrase; "one of them" refers back; "it
# rains" is the weather, not a pronoun; a plural noun before its verb ("then meows occur") opens
# a new source; a sound event before a noun doing something splits ("hissing and wind
# blowing"); a compound subject named again is the same source; "followed a man speaking"
# means "followed by".
#
# Where the count still goes wrong, the unseen set first. What is left is mostly genuinely
# ambiguous ("horse clip clops with a neigh": one horse or a second sound?), a "with" phrase
# whose role only the audio could settle, lists without verbs or commas ("bells ring a man
# laughs"), and a person handling a thing ("a woman speaks and fries food"): held-out 1 and 4
# label the thing a source of its own, held-out 2 does not ("a man speaks and crumples
# plastic"), so no rule can please both and none was written. A wrong count is not fatal
# in training: `slots` fits any number of clauses to the K output slots, but a broken clause
# ("a loud") is a poor CLAP target.

# %%
errors = [(c, g, parse(c)) for c, g in heldout3 + heldout4 + heldout + heldout2 + gold
          if len(parse(c)) != len(g)]
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
