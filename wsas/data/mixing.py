"""N-source mixtures with captions, mixture-of-mixtures batches and the fixed test set.

A training example draws ``groups * n_sources`` clips of distinct classes (with
``repeat_classes``: distinct within each mixture only, so that the mixtures of one example may
share a class, as two real recordings can); group ``g`` sums to mixture ``X_g`` and is described
by one caption whose clauses are joined by varied connectives, so the clause parser meets real
variety. The per-source ground truth is kept for supervised
training and evaluation; weakly supervised regimes see only mixtures and captions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from wsas.data.datasets import AudioCaptionDataset, ClipSet
from wsas.errors import WsasError

GAIN_DB = (-5.0, 5.0)  # random gain of each source in a training mixture
PAIR_TEMPLATES = (
    "{a} while {b}",
    "{a} as {b}",
    "{a} and {b}",
    "{a}, followed by {b}",
    "{a} followed by {b}",
    "{a}, then {b}",
    "{a} while {b} in the background",
    "{a} as well as {b}",
    "{a}, and {b}",
    "{a} before {b}",
    "{a} after {b}",
    "{a}; {b}",
    "{a} while in the background {b}",
)
LIST_JOINS = (", ", ", ", " while ", " as ")
LIST_ENDS = (" and ", ", and ", " followed by ", " while ", " as ")
FILLERS = ("", "", "", "", "there is ", "you can hear ", "we hear ")


@dataclass
class MixtureBatch:
    """``sources (B, G, N, S)`` of classes ``labels (B, G, N)``; ``mixtures (B, G, S)``; one caption
    per mixture."""

    sources: torch.Tensor
    labels: torch.Tensor
    captions: list[list[str]]  # [B][G]

    @property
    def mixtures(self) -> torch.Tensor:
        return self.sources.sum(dim=2)


@dataclass
class CaptionedBatch:
    """Real recordings, each a mixture of unknown sources: ``mixtures (B, G, S)``, one caption
    each."""

    mixtures: torch.Tensor
    captions: list[list[str]]  # [B][G]


def sample_captioned(
    recordings: AudioCaptionDataset, batch: int, rng: np.random.Generator, groups: int = 2
) -> CaptionedBatch:
    """Draw ``batch`` examples of ``groups`` distinct captioned recordings (the weak regimes' real
    data)."""
    if len(recordings) < groups:
        raise WsasError(
            f"{groups} recordings needed per example, the data set has {len(recordings)}"
        )
    rows = [
        [recordings[int(i)] for i in rng.choice(len(recordings), size=groups, replace=False)]
        for _ in range(batch)
    ]
    return CaptionedBatch(
        torch.stack([torch.stack([wave for wave, _, _ in row]) for row in rows]),
        [[caption for _, caption, _ in row] for row in rows],
    )


def compose_caption(clauses: list[str], rng: np.random.Generator) -> str:
    """Join single-source ``clauses`` into one caption with a random connective pattern."""
    clauses = list(clauses)
    if len(clauses) == 1:
        text = clauses[0]
    elif len(clauses) == 2:
        text = PAIR_TEMPLATES[rng.integers(len(PAIR_TEMPLATES))].format(a=clauses[0], b=clauses[1])
    else:
        join, end = (
            LIST_JOINS[rng.integers(len(LIST_JOINS))],
            LIST_ENDS[rng.integers(len(LIST_ENDS))],
        )
        text = join.join(clauses[:-1]) + end + clauses[-1]
    filler = FILLERS[rng.integers(len(FILLERS))]
    if filler and not text.startswith(("a ", "an ")):
        filler = ""
    text = filler + text
    text = text[0].upper() + text[1:]
    return text + ("." if rng.random() < 0.3 else "")


def sample_batch(
    clips: ClipSet,
    batch: int,
    n_sources: int,
    rng: np.random.Generator,
    groups: int = 1,
    gain_db: tuple[float, float] = GAIN_DB,
    shift: bool = True,
    repeat_classes: bool = False,
) -> MixtureBatch:
    """Draw ``batch`` examples of ``groups`` mixtures of ``n_sources`` clips each, all classes
    distinct (``repeat_classes``: distinct within each mixture; the mixtures of an example draw
    their classes independently, so they may share some).

    Each source gets a random gain in ``gain_db`` and (with ``shift``) a random circular time shift.
    """
    draw = _draw(clips, batch, n_sources, rng, groups, gain_db, shift, repeat_classes)
    return _materialise(clips, draw, slice(None))


@dataclass
class _Draw:
    """The random choices of a batch, without audio: ``idx``, ``labels`` ``(B, G * N)``,
    ``gains (B, G * N, 1)``, ``offsets (B, G * N)`` or None, ``captions [B][G]``."""

    idx: np.ndarray
    labels: np.ndarray
    gains: np.ndarray
    offsets: np.ndarray | None
    captions: list[list[str]]
    groups: int
    n_sources: int


def _draw(clips, batch, n_sources, rng, groups, gain_db, shift, repeat_classes=False) -> _Draw:
    n_total = groups * n_sources
    by_class = {int(c): np.flatnonzero(clips.labels.numpy() == c) for c in clips.labels.unique()}
    distinct = n_sources if repeat_classes else n_total  # classes that must differ
    if distinct > len(by_class):
        raise WsasError(f"{distinct} distinct classes needed, the clip set has {len(by_class)}")
    classes = list(by_class)
    idx = np.empty((batch, n_total), dtype=np.int64)
    labels = np.empty((batch, n_total), dtype=np.int64)
    for b in range(batch):
        if repeat_classes:
            chosen = np.concatenate(
                [rng.choice(classes, size=n_sources, replace=False) for _ in range(groups)]
            )
        else:
            chosen = rng.choice(classes, size=n_total, replace=False)
        labels[b] = chosen
        idx[b] = [rng.choice(by_class[c]) for c in chosen]
    gains = 10 ** (rng.uniform(*gain_db, size=(batch, n_total, 1)) / 20)
    offsets = rng.integers(clips.waves.shape[-1], size=(batch, n_total)) if shift else None
    captions = [
        [
            compose_caption(
                [
                    clips.phrasings[i][rng.integers(len(clips.phrasings[i]))]
                    for i in idx[b, g * n_sources : (g + 1) * n_sources]
                ],
                rng,
            )
            for g in range(groups)
        ]
        for b in range(batch)
    ]
    return _Draw(idx, labels, gains, offsets, captions, groups, n_sources)


def _materialise(clips: ClipSet, draw: _Draw, rows: slice) -> MixtureBatch:
    """The audio of ``draw``'s examples ``rows`` (only those are held in memory)."""
    idx, labels = draw.idx[rows], draw.labels[rows]
    sources = clips.waves[torch.from_numpy(idx)] * torch.from_numpy(draw.gains[rows]).float()
    if draw.offsets is not None:
        sources = torch.stack(
            [
                torch.stack([torch.roll(s, int(o)) for s, o in zip(row, offs)])
                for row, offs in zip(sources, draw.offsets[rows])
            ]
        )
    batch = len(idx)
    return MixtureBatch(
        sources.reshape(batch, draw.groups, draw.n_sources, -1),
        torch.from_numpy(labels).reshape(batch, draw.groups, draw.n_sources),
        draw.captions[rows],
    )


def fixed_pairs(clips: ClipSet, n: int, seed: int = 1234) -> MixtureBatch:
    """The fixed, seeded 2-source evaluation set (the paper's protocol): ``n`` pairs of distinct
    classes, 0 dB."""
    return sample_batch(clips, n, 2, np.random.default_rng(seed), gain_db=(0.0, 0.0), shift=False)


def fixed_pair_batches(
    clips: ClipSet, n: int, seed: int = 1234, size: int = 64
) -> Iterator[MixtureBatch]:
    """:func:`fixed_pairs` in consecutive slices of ``size`` pairs: the same pairs, but only
    ``size`` of them in memory at a time."""
    draw = _draw(clips, n, 2, np.random.default_rng(seed), 1, (0.0, 0.0), False)
    for start in range(0, n, size):
        yield _materialise(clips, draw, slice(start, start + size))


def distinct_pairs(labels: torch.Tensor) -> int:
    """How many distinct 2-source mixtures of clips of different classes ``labels (N,)`` allow."""
    counts = torch.bincount(labels).double()
    return int((counts.sum() ** 2 - counts.pow(2).sum()) / 2)
