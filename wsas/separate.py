"""Inference: separate any recording by text queries, or by a whole caption.

``Separator.from_checkpoint(path)`` loads a trained separator (safetensors + JSON, no pickle).
``sep(wave, sr, queries)`` accepts numpy or torch, mono ``(S,)`` or multichannel ``(C, S)``, at
any rate, and returns one waveform per query at the input's rate, length and channel count
(each channel masked). Long inputs run in overlapping chunks with a cross-fade; files are
streamed block by block (``separate_file``), so memory stays bounded for any length.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from wsas.audio import (
    CHUNK_SECONDS,
    OVERLAP_SECONDS,
    as_wave,
    check_rate,
    chunk_spans,
    open_audio,
    overlap_add,
    process_in_chunks,
    resample,
)
from wsas.bundle import load_run
from wsas.captions import parse
from wsas.clap import cached_text_embedder, query_embedder
from wsas.errors import AudioError, CaptionError, CheckpointError, WsasError
from wsas.pretrained import DEFAULT, model_path
from wsas.regimes import REGIMES, get_regime
from wsas.results import publish

PROGRESS_SECONDS = 60.0  # inputs at least this long show a progress bar over their chunks


def check_queries(queries) -> list[str]:
    """A non-empty list of non-empty text queries (a single string is one query)."""
    queries = [queries] if isinstance(queries, str) else list(queries)
    if not queries:
        raise CaptionError("no query given: pass at least one text query")
    for q in queries:
        if not isinstance(q, str) or not re.search(r"\w", q):
            raise CaptionError(f"empty query: {q!r} has no words")
    return queries


def slug(text: str) -> str:
    """A file-name-safe version of a query: its lower-cased words (any script) joined by '_'."""
    return re.sub(r"\W+", "_", text.lower()).strip("_")[:60] or "query"


def output_names(
    prefix: str, queries: list[str], out_dir: str | os.PathLike, fmt: str, residual: bool = False
) -> dict[str, Path]:
    """``{query: out_dir/<prefix>__<slug>.<fmt>}`` plus ``"residual"``; never two the same file.

    Queries whose slugs clash ("a dog barks", "A dog barks!") get ``_2``, ``_3``... in order;
    ``residual`` is reserved for the residual stem. Duplicate queries must be removed first.
    """
    if len(set(queries)) != len(queries):
        raise CaptionError("the same query is given twice")
    if residual and "residual" in queries:
        raise CaptionError("'residual' names the residual stem: rephrase that query")
    out_dir, taken, names = Path(out_dir), {"residual"}, {}
    for query in queries:
        base = name = slug(query)
        for i in itertools.count(2):
            if name not in taken:
                break
            name = f"{base}_{i}"
        taken.add(name)
        names[query] = out_dir / f"{prefix}__{name}.{fmt}"
    if residual:
        names["residual"] = out_dir / f"{prefix}__residual.{fmt}"
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


class Separator:
    """A trained text-queried separator ready for inference."""

    def __init__(self, model, clap, config: dict, device: torch.device):
        self.model, self.clap, self.config, self.device = model, clap, config, device
        self.embed = cached_text_embedder(clap)
        unet = model.config
        self.query = query_embedder(clap, unet.conditioning, unet.max_tokens)  # the model's queries
        self.sample_rate = config["sample_rate"]
        self.residual = None  # mixture minus all estimates of the last call (input's type, shape)
        self.output_gain = 1.0  # gain applied to every output of the last separate_file

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | None = None) -> Separator:
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        run = load_run(path, device)
        mode = run.config["train"]["mode"]
        if get_regime(mode).unconditional:
            queried = ", ".join(r.name for r in REGIMES.values() if not r.unconditional)
            raise CheckpointError(
                f"{path}: a {mode} model has no text queries; "
                f"use a text-conditioned one ({queried})"
            )
        return cls(run.model, run.clap, run.config, device)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT, device: str | None = None) -> Separator:
        """A model shipped with wsas (``wsas models`` lists them), e.g. ``"weak"``."""
        return cls.from_checkpoint(model_path(name), device)

    @torch.no_grad()
    def _separate_block(self, block: torch.Tensor, sr: int, queries: torch.Tensor) -> torch.Tensor:
        """``block (C, L)`` at ``sr`` -> ``(K, C, L)``: every channel masked by every query."""
        x = resample(block, sr, self.sample_rate).to(self.device)
        est = self.model(x, queries.expand(len(x), *queries.shape[1:])).float().cpu()  # (C, K, L')
        est = resample(est, self.sample_rate, sr)
        est = torch.nn.functional.pad(est, (0, max(0, block.shape[-1] - est.shape[-1])))[
            ..., : block.shape[-1]
        ]
        return est.transpose(0, 1)

    def chunking(self, sr: int) -> tuple[int, int]:
        return round(CHUNK_SECONDS * sr), round(OVERLAP_SECONDS * sr)

    def __call__(self, wave, sr: int, queries) -> dict:
        """Separate ``wave`` (``(S,)`` or ``(C, S)``, numpy or torch) at ``sr`` Hz by each query.

        Returns ``{query: estimate}``, each the input's type, shape and rate; ``self.residual``
        holds the mixture minus the sum of the estimates.
        """
        queries = check_queries(queries)
        sr = check_rate(sr, "input")
        is_numpy = not isinstance(wave, torch.Tensor)
        mix = as_wave(wave, "input")
        channels = mix if mix.ndim == 2 else mix[None]
        q = self.query(queries).to(self.device)[None]  # (1, K, D)
        chunk, overlap = self.chunking(sr)
        est = process_in_chunks(
            lambda b: self._separate_block(b, sr, q), channels, chunk, overlap
        )  # (K, C, S)
        if mix.ndim == 1:
            est = est[:, 0]
        self.residual = mix - est.sum(0)
        if is_numpy:
            self.residual = self.residual.numpy()
        return {query: (e.numpy() if is_numpy else e) for query, e in zip(queries, est)}

    def separate_caption(self, wave, sr: int, caption: str) -> dict:
        """Parse ``caption`` into clauses and separate one stem per clause (see :meth:`__call__`).

        The stems plus ``self.residual`` add up to the mixture exactly (the paper's consistency
        idea, used at inference).
        """
        return self(wave, sr, parse(caption))

    @torch.no_grad()
    def clap_scores(self, stems: dict, sr: int) -> dict[str, float]:
        """CLAP similarity of each stem (mono mix of its channels) to its own query."""
        texts = list(stems)
        waves = torch.stack(
            [
                torch.as_tensor(np.asarray(s)).float().reshape(-1, np.shape(s)[-1]).mean(0)
                for s in stems.values()
            ]
        )
        sims = self.clap.embed_audio(waves.to(self.device), sr) @ self.embed(texts).T
        return {t: float(sims[i, i]) for i, t in enumerate(texts)}

    def separate_file(
        self,
        path: str | os.PathLike,
        queries,
        out_dir: str | os.PathLike,
        fmt: str = "wav",
        residual: bool = False,
        progress: bool = True,
        prefix: str | None = None,
        overwrite: bool = True,
    ) -> dict[str, Path]:
        """Stream ``path`` through the separator; write ``<prefix>__<query>.<fmt>`` per query.

        ``prefix`` defaults to the file's stem; names follow :func:`output_names` (never two
        the same file; repeated queries are separated once). With ``overwrite=False`` an
        existing output raises a WsasError before any work. Each output is written to a hidden
        temporary file and renamed at the end; none is left behind on failure or interruption.
        Memory is bounded by one chunk whatever the file's length. Returns ``{query: path}``.

        ``progress`` shows a bar over the chunks of inputs of ``PROGRESS_SECONDS`` (a minute) or
        more; shorter ones finish too soon for a bar to help.

        WAV outputs are float32, so stems + residual sum to the mixture exactly as written.
        FLAC holds integers in [-1, 1): when any output would exceed full scale, every output is
        scaled by the same gain (``self.output_gain``, 1.0 otherwise) so the sum still holds.
        """
        queries = list(dict.fromkeys(check_queries(queries)))
        out_dir = Path(out_dir)
        names = output_names(prefix or Path(path).stem, queries, out_dir, fmt, residual)
        existing = [p for p in names.values() if p.exists()]
        if existing and not overwrite:
            raise WsasError(f"{existing[0]}: exists (pass --overwrite to replace it)")
        q = self.query(queries).to(self.device)[None]
        temps, writers, peak = [], [], 0.0
        try:
            with open_audio(path) as f:
                sr, channels = f.samplerate, f.channels
                if fmt == "flac" and channels > 8:
                    raise AudioError(
                        f"{path}: {channels} channels, FLAC holds at most 8 (use --format wav)"
                    )
                chunk, overlap = self.chunking(sr)
                spans = chunk_spans(f.frames, chunk, overlap)
                bar = progress and f.frames >= PROGRESS_SECONDS * sr
                out_dir.mkdir(parents=True, exist_ok=True)
                for target in names.values():  # float WAV first, whatever the final format
                    fd, tmp = tempfile.mkstemp(
                        dir=out_dir, prefix=f".{target.stem}.", suffix=".wav"
                    )
                    os.close(fd)
                    temps.append(tmp)
                    writers.append(sf.SoundFile(tmp, "w", sr, channels, "FLOAT", format="WAV"))

                def blocks():
                    for start, end in tqdm(
                        spans, desc=f"separating {Path(path).name}", disable=not bar
                    ):
                        f.seek(start)
                        data = torch.from_numpy(
                            f.read(end - start, dtype="float32", always_2d=True).T.copy()
                        )
                        if not torch.isfinite(data).all():
                            raise AudioError(f"{path}: NaN or Inf samples near {start / sr:.1f} s")
                        est = self._separate_block(data, sr, q)  # (K, C, L)
                        yield torch.cat([est, (data - est.sum(0))[None]]) if residual else est

                for piece in overlap_add(blocks(), overlap):
                    peak = max(peak, float(piece.abs().max()))
                    for writer, stem in zip(writers, piece):
                        writer.write(stem.T.numpy())
                for writer in writers:
                    writer.close()
            self.output_gain = 1.0 if fmt == "wav" or peak < FULL_SCALE else FULL_SCALE / peak
            for i, (tmp, target) in enumerate(zip(temps, names.values())):
                if fmt != "wav":
                    temps[i] = _to_integer_format(tmp, fmt, self.output_gain)
                    os.unlink(tmp)
                publish(temps[i], target)
        finally:
            for writer in writers:  # after an error: close quietly, then remove
                with contextlib.suppress(Exception):
                    writer.close()
            for tmp in temps:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return names


FULL_SCALE = 0.999  # peak of scaled integer outputs (a little under 1 so nothing clips)


def _to_integer_format(wav: str, fmt: str, gain: float, block: int = 1 << 16) -> str:
    """Copy the float WAV ``wav`` into a new hidden temporary ``fmt`` file, times ``gain``."""
    fd, tmp = tempfile.mkstemp(dir=Path(wav).parent, prefix=Path(wav).stem + ".", suffix=f".{fmt}")
    os.close(fd)
    try:
        with (
            sf.SoundFile(wav) as src,
            sf.SoundFile(
                tmp, "w", src.samplerate, src.channels, "PCM_24", format=fmt.upper()
            ) as dst,
        ):
            for data in src.blocks(block, dtype="float32", always_2d=True):
                dst.write(np.clip(data * gain, -1, 1))
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp
