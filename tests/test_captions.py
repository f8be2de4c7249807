import csv
from pathlib import Path

import numpy as np
import pytest

from wsas.captions import clause_match, evaluate_parser, parse, slots, source_counts
from wsas.data.classes import CLASSES
from wsas.data.mixing import compose_caption
from wsas.errors import CaptionError

GOLD = (
    Path(__file__).parent / "data" / "gold_captions.tsv"
)  # development set: the rules were written against it
HELDOUT = (
    Path(__file__).parent / "data" / "heldout_captions.tsv"
)  # AudioCaps val, labelled before any parsing
# 170 AudioCaps train captions drawn by tests/data/draw_heldout.py (seed 19), labelled before
# the parser first ran on them (count 0.782, F1 0.915 then); the rules were improved afterwards
HELDOUT2 = Path(__file__).parent / "data" / "heldout2_captions.tsv"
# 60 more (seed 23), drawn after the last rule change and labelled before parsing: unseen
HELDOUT3 = Path(__file__).parent / "data" / "heldout3_captions.tsv"
# 170 more (seed 31, issue 19), labelled and committed before the parser first ran on them
# (count 0.882, F1 0.961 then); the rules were improved on general patterns afterwards
HELDOUT4 = Path(__file__).parent / "data" / "heldout4_captions.tsv"
AUDIOCAPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "audiocaps"


def gold_pairs(path=GOLD):
    with open(path, newline="") as f:
        return [(r["caption"], r["clauses"].split("|")) for r in csv.DictReader(f, delimiter="\t")]


def test_gold_set_is_large_enough_and_real():
    pairs = gold_pairs()
    train = Path(__file__).resolve().parents[2] / "shared" / "data" / "audiocaps" / "train.csv"
    assert len(pairs) >= 150
    if train.is_file():  # every gold caption is a real AudioCaps caption
        captions = {r["caption"] for r in csv.DictReader(open(train, newline=""))}
        assert all(c in captions for c, _ in pairs)


def test_heldout_set_is_real_validation_captions():
    pairs = gold_pairs(HELDOUT)
    val = AUDIOCAPS / "val.csv"
    assert len(pairs) >= 75 and not {c for c, _ in pairs} & {c for c, _ in gold_pairs()}
    if val.is_file():
        captions = {r["caption"] for r in csv.DictReader(open(val, newline=""))}
        assert all(c in captions for c, _ in pairs)


@pytest.mark.parametrize(
    "path,size", [(HELDOUT2, 150), (HELDOUT3, 60), (HELDOUT4, 160)], ids=["2", "3", "4"]
)
def test_train_heldout_sets_are_real_train_captions_unlike_the_other_sets(path, size):
    pairs = gold_pairs(path)
    others = [p for p in (GOLD, HELDOUT, HELDOUT2, HELDOUT3, HELDOUT4) if p != path]
    seen = {c for p in others for c, _ in gold_pairs(p)}
    assert len(pairs) >= size and not {c for c, _ in pairs} & seen
    assert all(all(g) for _, g in pairs)  # every caption has labelled, non-empty clauses
    if (AUDIOCAPS / "train.csv").is_file():
        captions = {r["caption"] for r in csv.DictReader(open(AUDIOCAPS / "train.csv"))}
        assert all(c in captions for c, _ in pairs)


@pytest.mark.parametrize(
    "path,count_floor,f1_floor",
    [
        (GOLD, 0.96, 0.98),
        (HELDOUT, 0.92, 0.97),
        (HELDOUT2, 0.94, 0.965),
        (HELDOUT3, 0.85, 0.93),
        (HELDOUT4, 0.93, 0.965),
    ],
    ids=["development", "heldout-val", "heldout2-train", "heldout3-unseen", "heldout4-train"],
)
def test_parser_scores_stay_above_their_floors(path, count_floor, f1_floor):
    # measured (count, F1): development 0.981 / 0.992, held-out 1 0.949 / 0.987,
    # held-out 2 0.959 / 0.980, held-out 3 0.883 / 0.952, held-out 4 0.947 / 0.977
    scores = evaluate_parser(gold_pairs(path))
    assert scores["count_accuracy"] >= count_floor
    assert scores["f1"] >= f1_floor


@pytest.mark.parametrize(
    "caption,expected",
    [
        (
            "A man speaks while a dog barks and rain falls",
            ["a man speaks", "a dog barks", "rain falls"],
        ),
        ("A man speaks and laughs", ["a man speaks and laughs"]),
        ("A man speaks and a dog barks", ["a man speaks", "a dog barks"]),
        (
            "Birds chirp, a dog barks and a car passes",
            ["birds chirp", "a dog barks", "a car passes"],
        ),
        ("A horn is honked repeatedly", ["a horn is honked repeatedly"]),
        (
            "There is a man speaking followed by a door closing",
            ["a man speaking", "a door closing"],
        ),
        (
            "You can hear a bell ringing as well as a cat meowing.",
            ["a bell ringing", "a cat meowing"],
        ),
        (
            "A dog barks in the background while a woman talks nearby",
            ["a dog barks", "a woman talks nearby"],
        ),
        (
            "Adults and children speak nearby while a crowd rumbles",
            ["adults and children speak nearby", "a crowd rumbles"],
        ),
        ("A TRAIN HORN SOUNDS AS IT PASSES!!", ["a train horn sounds as it passes"]),
        ("An engine idles, then the engine revs", ["an engine idles"]),
        ("A man speaks then a man speaks", ["a man speaks"]),
        ("Brief silence followed by a loud explosion", ["a loud explosion"]),
    ],
)
def test_parse_examples(caption, expected):
    assert parse(caption) == expected


@pytest.mark.parametrize(
    "caption,expected",
    [
        ("A baby cries and babbles", ["a baby cries and babbles"]),  # an unknown second verb
        ("Frogs croak and vocalize", ["frogs croak and vocalize"]),
        ("A woman speaks over an intercom", ["a woman speaks over an intercom"]),
        ("A man speaks with a southern drawl", ["a man speaks with a southern drawl"]),
        ("Someone saws wood with a hand saw", ["someone saws wood with a hand saw"]),
        (
            "An emergency vehicle with siren blaring is coming up the road",
            ["an emergency vehicle with siren blaring is coming up the road"],
        ),
        ("Female speech and sizzling", ["female speech", "sizzling"]),
        ("Hissing and scraping noise", ["hissing and scraping noise"]),
        ("Some knocks and a man speaking", ["some knocks", "a man speaking"]),
        ("Men, women and children speaking", ["men, women and children speaking"]),
        ("A loud, long burp followed by some clanking", ["a loud, long burp", "some clanking"]),
        ("Thunder rumbles as rain falls", ["thunder rumbles", "rain falls"]),
        ("A dog barks. A man speaks", ["a dog barks", "a man speaks"]),
        ("A beep, then an engine starts and more beeps go off", ["a beep", "an engine starts"]),
        ("A train horn blasts over and over", ["a train horn blasts repeatedly"]),
        # found on held-out set 4 (issue 19)
        (
            "A motorbike engine revving then running idle",
            ["a motorbike engine revving then running idle"],
        ),
        ("Pots are tapped and scraped", ["pots are tapped and scraped"]),
        (
            "A woman is washing dishes and scrubbing them",
            ["a woman is washing dishes and scrubbing them"],
        ),
        ("Two men talk and one of them whistles", ["two men talk and one of them whistles"]),
        ("Sirens wail near and far", ["sirens wail near and far"]),
        ("A car drives further and further away", ["a car drives further and further away"]),
        ("A woman speaks and then barks are heard", ["a woman speaks", "barks are heard"]),
        ("Humming and wind blowing", ["humming", "wind blowing"]),
        ("Beeping and electrical buzzing", ["beeping and electrical buzzing"]),
        ("A piano plays while it is raining", ["a piano plays", "it is raining"]),
        ("A man speaks followed a dog barking", ["a man speaks", "a dog barking"]),
        ("A buzzing sound is followed by a thud", ["a buzzing sound", "a thud"]),
        (
            "Water is rushing, during which a man speaks",
            ["water is rushing", "a man speaks"],
        ),
        (
            "An aircraft engine idles, a bell rings and an aircraft engine starts",
            ["an aircraft engine idles", "a bell rings"],
        ),
    ],
)
def test_parse_patterns_found_on_unseen_captions(caption, expected):
    assert parse(caption) == expected


@pytest.mark.parametrize("caption", ["", "   ", "...", "?!,;", None])
def test_empty_caption_raises(caption):
    with pytest.raises(CaptionError, match="empty caption"):
        parse(caption)


def test_corpus_captions_parse_to_their_source_count():
    rng = np.random.default_rng(0)
    errors = 0
    for _ in range(500):
        n = int(rng.integers(1, 5))
        chosen = rng.choice(len(CLASSES), n, replace=False)
        caption = compose_caption(
            [CLASSES[c].phrasings[rng.integers(len(CLASSES[c].phrasings))] for c in chosen], rng
        )
        errors += len(parse(caption)) != n
    assert errors / 500 < 0.02


def test_slots_pad_with_alpha_summing_to_one_per_clause():
    clauses, alpha = slots(["a", "b"], 5)
    assert clauses == ["a", "b", "a", "b", "a"]
    for c in set(clauses):
        assert sum(w for k, w in zip(clauses, alpha) if k == c) == pytest.approx(1.0)


def test_slots_subsample():
    clauses, alpha = slots(["a", "b", "c", "d"], 2, rng=np.random.default_rng(0))
    assert len(clauses) == 2 and len(set(clauses)) == 2 and alpha == [1.0, 1.0]


def test_clause_match_uses_content_words():
    assert clause_match("a dog is barking", "dog barking")
    assert not clause_match("a dog is barking", "a cat meows")


def test_source_counts_histogram_of_parsed_sources_skipping_blanks():
    captions = [
        "A man speaks while a dog barks and rain falls",
        "a dog barks",
        "   ",
        "a man speaks and laughs",
        "birds chirp as a car passes",
    ]
    counts = source_counts(captions)
    assert list(counts) == ["captions", "captions_per_second", "sources", "mean_sources"]
    assert counts["captions"] == 4
    assert counts["sources"] == {"1": 2, "2": 1, "3": 1}
    assert list(counts["sources"]) == ["1", "2", "3"]
    assert counts["mean_sources"] == 1.75
    assert isinstance(counts["captions_per_second"], int) and counts["captions_per_second"] > 0


def test_source_counts_of_only_blank_captions_raises():
    with pytest.raises(CaptionError, match="no captions"):
        source_counts(["", "  "])
