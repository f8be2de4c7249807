"""Inference: separate any recording by text queries, or by a whole caption.

``Separator.from_checkpoint(path)`` loads a trained separator (safetensors + JSON, no pickle).
``sep(wave, sr, queries)`` accepts numpy or torch, mono ``(S,)`` or multichannel ``(C, S)``, at
any rate, and returns one waveform per query at the input's rate, length and channel count
(each channel masked). Long inputs run in overlapping chunks with a cross-fade; files are
streamed block by block (``separate_file``), so memory stays bounded for any length.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Callable
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
    read_block,
    resample,
)
from wsas.bundle import load_run
from wsas.captions import parse
from wsas.clap import cached_text_embedder, query_embedder
from wsas.errors import AudioError, CaptionError, CheckpointError, WsasError
from wsas.files import OutputSet
from wsas.outputs import FULL_SCALE, Planned, Streamed, plan_outputs, to_integer_format
from wsas.pretrained import DEFAULT, model_path
from wsas.regimes import REGIMES, get_regime

LOUD = 2.0**20  # a block peaking above this is scaled down for float32 processing (STFT powers)
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


def separate_files(
    load: Callable[[], Separator],
    mixes: list[str],
    queries: list[str] | None = None,
    caption: str | None = None,
    out: str | os.PathLike = "separated",
    fmt: str = "wav",
    residual: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    manifests: bool = True,
    prefixes: list[str] | None = None,
    note: Callable[[str], None] = lambda message: None,
    verbose: bool = False,
    excepts: list[str] | None = None,
    examples: list[str] | None = None,
) -> list[Planned]:
    """Separate each file of ``mixes`` by ``queries`` (or one stem per clause of ``caption``,
    plus the residual) into the folder ``out``, all or nothing.

    Every name is planned (:func:`plan_outputs`) and claimed (:class:`wsas.files.OutputSet`:
    existing outputs refused unless ``overwrite``, inputs never replaced, one run per folder)
    before ``load()`` gives the separator; every file of the run is published at the end, or
    none after any error or signal. Repeated queries and inputs are separated once, each with a
    ``note`` (with ``verbose``, one per input on its resampling). A manifest per input maps
    each query (or clause) to its file and records the gain; a caption adds each clause's CLAP
    score (first minute) and energy share. ``excepts`` (``--except``) adds their stems and
    ``<prefix>__except``: the mixture minus their estimates, so that the two add up to it.
    ``examples`` (``-Q``) are recordings of wanted sounds: each is a query by example, named
    ``like <file name>`` (its first :data:`EXAMPLE_SECONDS` are embedded).
    """
    queries, excepts, examples = _gather_queries(queries, caption, excepts, examples, note)
    first: dict[Path, str] = {}
    for mix in mixes:
        first.setdefault(Path(mix).resolve(), str(mix))
    if len(first) < len(mixes):
        note("an input given twice is separated once")
    mixes = list(first.values())
    rates = {}
    for mix in mixes:  # every input is readable before any work starts
        with open_audio(mix) as f:
            rates[mix] = f.samplerate
    residual = residual or caption is not None
    named = [*queries, *examples]
    plan = plan_outputs(mixes, named, fmt, residual, manifests, prefixes, bool(excepts))
    names = [name for item in plan for name in item.names]
    with OutputSet(out, names, overwrite, protect=mixes) as outputs:
        sep = load()
        for mix, sr in rates.items() if verbose else ():
            model_sr = sep.sample_rate
            note(
                f"{mix}: {sr} Hz, the model's rate: no resampling"
                if sr == model_sr
                else f"{mix}: resampled {sr} Hz -> {model_sr} Hz for the model; outputs "
                f"written at {sr} Hz"
            )
        for item in plan:
            temps = [outputs.temp(name) for name in item.stems.values()]
            keep = MANIFEST_CLAP_SECONDS if caption and item.manifest else 0.0
            negated = [queries.index(q) for q in excepts]
            done = sep.stream(
                item.mix, queries, temps, fmt, residual, progress, keep, negated, examples
            )
            if done.gain != 1.0:
                note(f"{item.mix}: outputs scaled by {done.gain:.4f} to fit {fmt.upper()}")
            if done.input_scaled:
                note(
                    f"{item.mix}: too loud for float32, separated at 2**-{done.input_scaled} "
                    "and scaled back exactly"
                )
            if item.manifest:
                manifest = sep.manifest(item, done, caption, Path(out), excepts)
                outputs.temp(item.manifest).write_text(manifest, encoding="utf-8")
    return plan


MANIFEST_CLAP_SECONDS = 60.0  # a caption's manifest scores the first minute of each clause
EXAMPLE_SECONDS = 10.0  # of a query by example, embedded by the CLAP audio tower


def _gather_queries(
    queries: list[str] | None,
    caption: str | None,
    excepts: list[str] | None,
    examples: list[str] | None,
    note: Callable[[str], None],
) -> tuple[list[str], list[str], dict[str, tuple[torch.Tensor, int]]]:
    """The text queries of a run (``queries`` or ``caption``'s clauses, then ``excepts``), each
    once; the negated ones; and the examples read (``{"like <name>": (wave, sr)}``)."""
    if queries is not None and caption is not None:
        raise WsasError("give either -q QUERY or --caption CAPTION, not both")
    if not (queries or caption or excepts or examples):
        raise WsasError("give either -q QUERY, --caption CAPTION, --except QUERY or -Q EXAMPLE")
    excepts = list(dict.fromkeys(check_queries(excepts))) if excepts else []
    asked = parse(caption) if caption else check_queries(queries) if queries else []
    if both := [q for q in asked if q in excepts]:
        raise CaptionError(f"{both[0]!r} is both a query and an --except: choose one")
    asked = asked + excepts
    texts = list(dict.fromkeys(asked))
    if len(texts) < len(asked):
        repeated = sorted({q for q in asked if asked.count(q) > 1})
        note(f"repeated {'clauses' if caption else 'queries'} separated once: {repeated}")
    read = {}
    for path in examples or ():
        with open_audio(path) as f:
            frames = min(f.frames, round(EXAMPLE_SECONDS * f.samplerate))
            wave = f.read(frames, dtype="float32", always_2d=True).T.copy()
            read[f"like {Path(path).name}"] = (torch.from_numpy(wave), f.samplerate)
    return texts, excepts, read


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
        self.input_scaled = 0  # the last call's inputs were scaled by 2 ** -input_scaled (loud)

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
    def _separate_block(
        self,
        block: torch.Tensor,
        sr: int,
        queries: torch.Tensor,
        where: str = "input",
        start: float = 0.0,
    ) -> torch.Tensor:
        """``block (C, L)`` at ``sr`` -> ``(K, C, L)``: every channel masked by every query.

        A block louder than ``LOUD`` is scaled by a power of two (exact both ways) to a peak in
        (0.5, 1] for the model and its estimates scaled back (``self.input_scaled`` records the
        largest such exponent); a non-finite estimate is an AudioError naming ``where`` and the
        time (:meth:`check_finite`; ``start`` is the block's offset in seconds).
        """
        peak = float(block.abs().max()) if block.numel() else 0.0
        exponent = math.frexp(peak)[1] if peak > LOUD else 0
        self.input_scaled = max(self.input_scaled, exponent)
        x = resample(torch.ldexp(block, torch.tensor(-exponent)), sr, self.sample_rate)
        x = x.to(self.device)
        est = self.model(x, queries.expand(len(x), *queries.shape[1:])).float().cpu()
        est = resample(est, self.sample_rate, sr)  # (C, K, L')
        est = torch.nn.functional.pad(est, (0, max(0, block.shape[-1] - est.shape[-1])))[
            ..., : block.shape[-1]
        ]
        est = torch.ldexp(est, torch.tensor(exponent)).transpose(0, 1)
        self.check_finite(est, sr, where, start)
        return est

    @staticmethod
    def check_finite(est: torch.Tensor, sr: int, where: str, start: float = 0.0) -> None:
        """An AudioError naming ``where`` and the time in seconds (``start`` plus the first bad
        sample of ``est (..., L)`` at ``sr`` Hz) when an estimate holds NaN or Inf."""
        bad = (~torch.isfinite(est)).reshape(-1, est.shape[-1]).any(0).nonzero()
        if len(bad):
            raise AudioError(
                f"{where}: the separator's estimate is not finite (NaN or Inf) near "
                f"{start + int(bad[0]) / sr:.2f} s"
            )

    def chunking(self, sr: int) -> tuple[int, int]:
        return round(CHUNK_SECONDS * sr), round(OVERLAP_SECONDS * sr)

    def __call__(self, wave, sr: int, queries, where: str = "input") -> dict:
        """Separate ``wave`` (``(S,)`` or ``(C, S)``, numpy or torch) at ``sr`` Hz by each text
        query; see :meth:`separate`."""
        return self.separate(wave, sr, queries, where=where)

    def separate(
        self, wave, sr: int, queries=(), query_audio: dict | None = None, where: str = "input"
    ) -> dict:
        """Separate ``wave`` (``(S,)`` or ``(C, S)``, numpy or torch) at ``sr`` Hz by each text
        query and by each example in ``query_audio`` (``{name: (example, example_sr)}``: a
        short recording of the wanted sound, embedded by the CLAP audio tower).

        Returns ``{query or name: estimate}``, each the input's type, shape and rate;
        ``self.residual`` holds the mixture minus the sum of the estimates. Errors name the
        input ``where``.
        """
        queries = check_queries(queries) if queries or not query_audio else []
        sr = check_rate(sr, where)
        is_numpy = not isinstance(wave, torch.Tensor)
        mix = as_wave(wave, where)
        channels = mix if mix.ndim == 2 else mix[None]
        names, q = self.query_embeddings(queries, query_audio)
        chunk, overlap = self.chunking(sr)
        self.input_scaled = 0
        blocks = (
            self._separate_block(channels[..., a:b], sr, q, where, a / sr)
            for a, b in chunk_spans(channels.shape[-1], chunk, overlap)
        )
        est = torch.cat(list(overlap_add(blocks, overlap)), dim=-1)  # (K, C, S)
        if mix.ndim == 1:
            est = est[:, 0]
        self.residual = mix - est.sum(0)
        self.check_finite(self.residual, sr, f"{where} (residual)")
        if is_numpy:
            self.residual = self.residual.numpy()
        return {name: (e.numpy() if is_numpy else e) for name, e in zip(names, est)}

    @torch.no_grad()
    def query_embeddings(
        self, queries: list[str], query_audio: dict | None = None
    ) -> tuple[list[str], torch.Tensor]:
        """The names and embeddings ``(1, K, D)`` of text ``queries`` then of the examples
        ``{name: (wave, sr)}`` (each mixed to mono, embedded by the CLAP audio tower)."""
        names, parts = list(queries), [self.query(queries)] if queries else []
        for name, (example, example_sr) in (query_audio or {}).items():
            if name in names:
                raise CaptionError(f"{name!r} names two queries")
            audio = as_wave(example, f"example {name!r}")
            audio = (audio if audio.ndim == 1 else audio.mean(0))[None].to(self.device)
            embedding = self.clap.embed_audio(audio, check_rate(example_sr, name)).float()
            parts.append(self.as_query(embedding.cpu()))
            names.append(name)
        return names, torch.cat(parts).to(self.device)[None]

    def as_query(self, embedding: torch.Tensor) -> torch.Tensor:
        """A pooled CLAP embedding ``(1, D)`` in the form the model's queries take: as it is, or
        for cross-attention one real token ``(1, max_tokens, D + 1)``."""
        config = self.model.config
        if config.conditioning != "cross":
            return embedding
        if embedding.shape[-1] != config.cond_dim:
            raise CheckpointError(
                f"this cross-attention model attends to {config.cond_dim}-wide text tokens; its "
                f"CLAP's {embedding.shape[-1]}-wide audio embedding cannot query it by example"
            )
        token = torch.zeros(1, config.max_tokens, config.cond_dim + 1)
        token[0, 0, : config.cond_dim], token[0, 0, -1] = embedding[0], 1.0
        return token

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

    @torch.no_grad()
    def manifest(
        self, item: Planned, done: Streamed, caption: str | None, out: Path, excepts=()
    ) -> str:
        """The JSON manifest of one separated input (see :func:`separate_files`)."""
        head = {"mixture": item.mix, "gain": done.gain}
        if "residual" in item.stems:
            head["sum"] = "stems + residual = gain * mixture"
        if excepts:
            head["except"] = list(excepts)
            head["except_sum"] = "except + the stems of its queries = gain * mixture"
        if caption is None:
            rows = [{"query": q, "file": str(out / name)} for q, name in item.stems.items()]
            return json.dumps({**head, "stems": rows}, indent=2, ensure_ascii=False) + "\n"
        kept = torch.cat(done.kept, -1) * done.gain  # (K + 1, S): as written
        clauses = [c for c in item.stems if c != "residual"]
        scores = self.clap_scores(dict(zip(clauses, kept.numpy())), done.sr)
        rows = [
            {
                "clause": name,
                "file": str(out / file),
                "clap_score": scores.get(name),
                "energy_share": round(energy / (done.mixture_energy + 1e-12), 4),
            }
            for (name, file), energy in zip(item.stems.items(), done.energies)
        ]
        text = json.dumps({**head, "caption": caption, "stems": rows}, indent=2, ensure_ascii=False)
        return text + "\n"

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
        """Stream one file through the separator into ``out_dir`` (see :func:`separate_files`,
        without a manifest); ``prefix`` defaults to the file's stem. Returns ``{query: path}``."""
        planned = separate_files(
            lambda: self,
            [path],
            list(dict.fromkeys(check_queries(queries))),
            out=out_dir,
            fmt=fmt,
            residual=residual,
            overwrite=overwrite,
            progress=progress,
            manifests=False,
            prefixes=None if prefix is None else [prefix],
        )[0]
        return {q: Path(out_dir) / name for q, name in planned.stems.items()}

    def stream(
        self,
        path: str | os.PathLike,
        queries: list[str],
        temps: list[Path],
        fmt: str,
        residual: bool,
        progress: bool,
        keep_seconds: float = 0.0,
        negated: list[int] = (),
        query_audio: dict | None = None,
    ) -> Streamed:
        """Separate the file ``path`` chunk by chunk into ``temps`` (one per query, then the
        residual, then with ``negated`` query indices the mixture minus their estimates; queries
        by example ``query_audio`` come after the text ones), in ``fmt``; memory stays bounded
        by one chunk whatever the file's length.

        WAV outputs are float32, so stems + residual sum to the mixture exactly as written.
        FLAC holds integers in [-1, 1): when any output would exceed full scale, every output
        is scaled by the same gain (``self.output_gain``, 1.0 otherwise) so the sum still holds.
        While it streams it keeps what a manifest needs: each output's energy, the mixture's,
        and the first ``keep_seconds`` of each output (mono).
        """
        names, q = self.query_embeddings(queries, query_audio)
        writers: list[sf.SoundFile] = []
        self.input_scaled = 0
        try:
            with open_audio(path) as f:
                sr, channels = f.samplerate, f.channels
                if fmt == "flac" and channels > 8:
                    raise AudioError(
                        f"{path}: {channels} channels, FLAC holds at most 8 (use --format wav)"
                    )
                chunk, overlap = self.chunking(sr)
                bar = progress and f.frames >= PROGRESS_SECONDS * sr
                # float WAV first, whatever the final format (the gain is known at the end)
                floats = [t.with_name(t.name + "-float") if fmt != "wav" else t for t in temps]
                writers = [
                    sf.SoundFile(t, "w", sr, channels, "FLOAT", format="WAV") for t in floats
                ]
                done = Streamed(sr, len(temps), round(keep_seconds * sr))

                blocks = self._blocks(f, path, q, (chunk, overlap), bar, residual, negated)
                for piece in overlap_add(blocks, overlap):  # (K[+1], C, L)
                    done.add(piece, len(names) + 1 if residual else 0)
                    for writer, stem in zip(writers, piece):
                        writer.write(stem.T.numpy())
                for writer in writers:
                    writer.close()
            done.input_scaled = self.input_scaled
            self.output_gain = done.gain = (
                1.0 if fmt == "wav" or done.peak < FULL_SCALE else FULL_SCALE / done.peak
            )
            for src, dst in zip(floats, temps):
                if src != dst:
                    to_integer_format(src, dst, fmt, done.gain)
                    src.unlink()
        finally:
            for writer in writers:  # after an error: close quietly (the caller removes them)
                with contextlib.suppress(Exception):
                    writer.close()
        return done


    def _blocks(self, f, path, q, chunking, bar: bool, residual: bool, negated):
        """The open file ``f`` chunk by chunk: its estimates by ``q`` ``(K, C, L)``, then the
        residual and the negated queries' complement when asked."""
        sr, (chunk, overlap) = f.samplerate, chunking
        spans = chunk_spans(f.frames, chunk, overlap)
        for start, end in tqdm(spans, desc=f"separating {Path(path).name}", disable=not bar):
            data = read_block(f, path, start, end - start)
            est = self._separate_block(data, sr, q, str(path), start / sr)  # (K, C, L)
            rows = [est, *([(data - est.sum(0))[None]] if residual else [])]
            if negated:
                rows.append((data - est[list(negated)].sum(0))[None])
            yield torch.cat(rows)
