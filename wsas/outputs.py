"""Output files of a separation run: their names, planned over every input before any work,
and what streaming them measured.

For each input ``<prefix>__<query>.<fmt>`` per query, ``<prefix>__residual``/``__except``, and
``<prefix>__manifest.json``: prefixes unique per input, query slugs unique per input, and
every name of the run unique over all inputs (compared case-insensitively).
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from wsas.errors import CaptionError, WsasError


def slug(text: str) -> str:
    """A file-name-safe version of a query: its lower-cased words (any script) joined by '_'."""
    return re.sub(r"\W+", "_", text.lower()).strip("_")[:60] or "query"


def output_names(
    prefix: str, queries: list[str], fmt: str, residual: bool = False, negated: bool = False
) -> dict[str, str]:
    """``{query: "<prefix>__<slug>.<fmt>"}`` plus ``"residual"`` and (``negated``) ``"except"``
    (the mixture minus the --except queries' estimates); never two the same name.

    Queries whose slugs clash ("a dog barks", "A dog barks!") get ``_2``, ``_3``... in order;
    ``residual`` and ``except`` are reserved. Duplicate queries must be removed first.
    """
    if len(set(queries)) != len(queries):
        raise CaptionError("the same query is given twice")
    for reserved, used in (("residual", residual), ("except", negated)):
        if used and reserved in queries:
            raise CaptionError(f"'{reserved}' names the {reserved} stem: rephrase that query")
    taken, names = {"residual", "except"}, {}
    for query in queries:
        base = name = slug(query)
        for i in itertools.count(2):
            if name not in taken:
                break
            name = f"{base}_{i}"
        taken.add(name)
        names[query] = f"{prefix}__{name}.{fmt}"
    for reserved, used in (("residual", residual), ("except", negated)):
        if used:
            names[reserved] = f"{prefix}__{reserved}.{fmt}"
    return names


def unique_prefixes(paths: list[str | os.PathLike]) -> list[str]:
    """One output prefix per input: its file stem, or ``<stem>_<i>`` when stems clash.

    ``d1/mix.wav`` and ``d2/mix.flac`` become ``mix_1`` and ``mix_2``; a lone stem stays as is.
    """
    stems = [Path(p).stem for p in paths]
    clashing = {s.lower() for s in stems if sum(t.lower() == s.lower() for t in stems) > 1}
    taken = {s.lower() for s in stems if s.lower() not in clashing}
    prefixes = []
    for stem in stems:
        name = stem
        if stem.lower() in clashing:
            name = next(
                f"{stem}_{i}" for i in itertools.count(1) if f"{stem}_{i}".lower() not in taken
            )
        taken.add(name.lower())
        prefixes.append(name)
    return prefixes


@dataclass
class Planned:
    """One input of a run and its output names (file names inside the output folder)."""

    mix: str
    prefix: str
    stems: dict[str, str]  # query (or clause, "residual") -> file name
    manifest: str | None  # "<prefix>__manifest.json", or None without manifests

    @property
    def names(self) -> list[str]:
        return [*self.stems.values(), *([self.manifest] if self.manifest else [])]


def plan_outputs(
    mixes: list[str],
    queries: list[str],
    fmt: str,
    residual: bool,
    manifests: bool = True,
    prefixes: list[str] | None = None,
    negated: bool = False,
) -> list[Planned]:
    """Every output name of a run, before any work: per input, ``<prefix>__<query>.<fmt>`` (see
    :func:`output_names`, :func:`unique_prefixes`) and ``<prefix>__manifest.json``. Two inputs
    whose names would meet (``a.wav`` with query "b c" and ``a__b.wav`` with query "c") are
    refused in one line; names are compared case-insensitively, as some file systems do."""
    plan = [
        Planned(
            mix,
            prefix,
            output_names(prefix, queries, fmt, residual, negated),
            f"{prefix}__manifest.json" if manifests else None,
        )
        for mix, prefix in zip(mixes, prefixes or unique_prefixes(mixes))
    ]
    owner: dict[str, str] = {}
    for item in plan:
        for name in item.names:
            other = owner.setdefault(name.casefold(), item.mix)
            if other != item.mix:
                raise WsasError(
                    f"{other} and {item.mix} would both write {name}: rename one of the inputs "
                    "or rephrase the query"
                )
    return plan


@dataclass
class Streamed:
    """What :meth:`Separator.stream` measured while it wrote one input's outputs."""

    sr: int
    outputs: int
    keep: int  # samples of each output kept (mono), for CLAP scores
    samples: int = 0
    peak: float = 0.0
    gain: float = 1.0
    input_scaled: int = 0  # the input was processed at 2 ** -input_scaled (too loud for float32)
    energies: list[float] = field(default_factory=list)
    mixture_energy: float = 0.0
    kept: list[torch.Tensor] = field(default_factory=list)

    def add(self, piece: torch.Tensor, parts: int) -> None:
        """Account for ``piece (K, C, L)``: peak, energies (the mixture's from its first
        ``parts`` rows, which add up to it; 0: unknown), the first ``keep`` samples."""
        self.peak = max(self.peak, float(piece.abs().max()))
        energy = piece.double().pow(2).sum((1, 2)).tolist()
        self.energies = [a + b for a, b in zip(self.energies, energy)] or energy
        if parts:
            self.mixture_energy += float(piece[:parts].sum(0).double().pow(2).sum())
        room = self.keep - self.samples
        if room > 0:
            self.kept.append(piece[..., :room].mean(1))
        self.samples += piece.shape[-1]


FULL_SCALE = 0.999  # peak of scaled integer outputs (a little under 1 so nothing clips)


def to_integer_format(wav: Path, out: Path, fmt: str, gain: float, block: int = 1 << 16) -> None:
    """Copy the float WAV ``wav`` into ``out`` as 24-bit ``fmt``, times ``gain``."""
    with (
        sf.SoundFile(wav) as src,
        sf.SoundFile(out, "w", src.samplerate, src.channels, "PCM_24", format=fmt.upper()) as dst,
    ):
        for data in src.blocks(block, dtype="float32", always_2d=True):
            dst.write(np.clip(data * gain, -1, 1))
