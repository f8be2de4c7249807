"""What is done with parsed clauses: fit them to K slots, match them, score the parser on them."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable

from wsas.captions.parser import parse
from wsas.captions.phrases import tokens
from wsas.captions.words import STOP_WORDS
from wsas.errors import CaptionError


def slots(clauses: list[str], k: int, rng=None) -> tuple[list[str], list[float]]:
    """Fit clauses to exactly ``k`` slots; returns ``(clauses_k, alpha_k)``.

    Fewer clauses are padded by repeating them (cyclically) and each copy gets
    ``alpha = 1 / copies``, so ``sum_k alpha_k * estimate_k`` still adds up to the mixture; more
    clauses are subsampled (``rng.choice`` if given, else the first ``k``) with ``alpha = 1``.
    """
    if not clauses:
        raise CaptionError("no clauses to fit into slots")
    if len(clauses) >= k:
        chosen = (
            sorted(rng.choice(len(clauses), size=k, replace=False)) if rng is not None else range(k)
        )
        return [clauses[i] for i in chosen], [1.0] * k
    padded = [clauses[i % len(clauses)] for i in range(k)]
    counts = {c: padded.count(c) for c in padded}
    return padded, [1.0 / counts[c] for c in padded]


def content_words(text: str) -> set[str]:
    """Words that carry meaning (for clause matching): no determiners, auxiliaries or fillers."""
    return {w.rstrip("s") for w in tokens(text.lower()) if w not in STOP_WORDS}


def clause_match(a: str, b: str) -> bool:
    """Two clauses match when they share most content words (Jaccard >= 0.5)."""
    wa, wb = content_words(a), content_words(b)
    return bool(wa | wb) and len(wa & wb) / len(wa | wb) >= 0.5


def evaluate_parser(pairs: Iterable[tuple[str, list[str]]]) -> dict:
    """Source-count accuracy and clause-level precision/recall/F1 of :func:`parse` on gold pairs."""
    n = correct = tp = n_pred = n_gold = 0
    for caption, gold in pairs:
        pred = parse(caption)
        n += 1
        correct += len(pred) == len(gold)
        n_pred, n_gold = n_pred + len(pred), n_gold + len(gold)
        unmatched = list(gold)
        for p in pred:
            hit = next((g for g in unmatched if clause_match(p, g)), None)
            if hit is not None:
                unmatched.remove(hit)
                tp += 1
    precision, recall = tp / max(n_pred, 1), tp / max(n_gold, 1)
    return {
        "captions": n,
        "count_accuracy": correct / max(n, 1),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(precision + recall, 1e-9),
    }


def source_counts(captions: list[str]) -> dict:
    """How many sources :func:`parse` finds per caption, over a list of captions.

    Blank captions are skipped. Returns ``{"captions": n, "captions_per_second": rate,
    "sources": {"1": n1, "2": n2, ...}, "mean_sources": mean}``: the rate is the parser's speed
    on this machine (an int), the histogram's keys are source counts in increasing order and
    the mean is rounded to 3 decimals. Raises :class:`CaptionError` if no caption has text.
    """
    texts = [c for c in captions if c.strip()]
    if not texts:
        raise CaptionError("no captions to parse: every caption is blank")
    started = time.perf_counter()
    counts = collections.Counter(len(parse(c)) for c in texts)
    seconds = max(time.perf_counter() - started, 1e-9)
    total = sum(counts.values())
    return {
        "captions": total,
        "captions_per_second": round(total / seconds),
        "sources": {str(k): counts[k] for k in sorted(counts)},
        "mean_sources": round(sum(k * v for k, v in counts.items()) / total, 3),
    }
