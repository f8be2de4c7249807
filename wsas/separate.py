"""Inference: separate any recording by text queries, or by a whole caption.

``Separator.from_checkpoint(path)`` loads a trained separator (safetensors + JSON, no pickle).
``sep(wave, sr, queries)`` accepts numpy or torch, mono ``(S,)`` or multichannel ``(C, S)``, at
any rate, and returns one waveform per query at the input's rate, length and channel count
(each channel masked). Long inputs run in overlapping chunks with a cross-fade; files are
streamed block by block (``separate_file``), so memory stays bounded for any length.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from wsas.audio import (
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
from wsas.clap import cached_text_embedder
from wsas.errors import AudioError, CaptionError, CheckpointError
from wsas.regimes import REGIMES, get_regime

CHUNK_SECONDS, OVERLAP_SECONDS = 8.0, 1.0


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
    """A file-name-safe version of a query."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "query"


class Separator:
    """A trained text-queried separator ready for inference."""

    def __init__(self, model, clap, config: dict, device: torch.device):
        self.model, self.clap, self.config, self.device = model, clap, config, device
        self.embed = cached_text_embedder(clap)
        self.sample_rate = config["sample_rate"]
        self.residual = (
            None  # mixture minus all estimates of the last call, same type and shape as its input
        )

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

    @torch.no_grad()
    def _separate_block(self, block: torch.Tensor, sr: int, queries: torch.Tensor) -> torch.Tensor:
        """``block (C, L)`` at ``sr`` -> ``(K, C, L)``: every channel masked by every query."""
        x = resample(block, sr, self.sample_rate).to(self.device)
        est = self.model(x, queries.expand(len(x), -1, -1)).float().cpu()  # (C, K, L')
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
        q = self.embed(queries).to(self.device)[None]  # (1, K, D)
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
    ) -> dict[str, Path]:
        """Stream ``path`` through the separator; write ``<stem>__<query>.<fmt>`` per query
        (atomically).

        Memory is bounded by one chunk whatever the file's length. Returns ``{query: path}``.
        """
        queries = check_queries(queries)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        names = {q: out_dir / f"{Path(path).stem}__{slug(q)}.{fmt}" for q in queries}
        if residual:
            names["residual"] = out_dir / f"{Path(path).stem}__residual.{fmt}"
        q = self.embed(queries).to(self.device)[None]
        temps = []
        try:
            with open_audio(path) as f:
                sr, channels = f.samplerate, f.channels
                chunk, overlap = self.chunking(sr)
                spans = chunk_spans(f.frames, chunk, overlap)
                writers = []
                for target in names.values():
                    fd, tmp = tempfile.mkstemp(
                        dir=out_dir, prefix=f".{target.stem}.", suffix=f".{fmt}"
                    )
                    os.close(fd)
                    temps.append(tmp)
                    writers.append(
                        sf.SoundFile(
                            tmp,
                            "w",
                            sr,
                            channels,
                            format=fmt.upper(),
                            subtype="FLOAT" if fmt == "wav" else "PCM_24",
                        )
                    )

                def blocks():
                    for start, end in tqdm(
                        spans, desc=f"separating {Path(path).name}", disable=not progress
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
                    for writer, stem in zip(writers, piece):
                        writer.write(
                            stem.T.numpy() if fmt == "wav" else np.clip(stem.T.numpy(), -1, 1)
                        )
                for writer in writers:
                    writer.close()
            for tmp, target in zip(temps, names.values()):
                os.replace(tmp, target)
        finally:
            for tmp in temps:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return names


def newest_checkpoint(root: str | os.PathLike = "work") -> Path:
    """The newest separator checkpoint under ``root`` (``make reproduce`` writes them), weak runs
    first."""
    found = sorted(
        Path(root).glob("*/runs/*/checkpoint.safetensors"), key=lambda p: p.stat().st_mtime
    )
    regimes = [REGIMES.get(p.parent.name.split("-x")[0]) for p in found]  # runs are MODE-xN-...
    conditioned = [p for p, r in zip(found, regimes) if r is not None and not r.unconditional]
    weak = [p for p in conditioned if p.parent.name.startswith("weak-")]
    if not (weak or conditioned):
        raise CheckpointError(
            f"no checkpoint under {root}/: run `make reproduce` or pass --checkpoint"
        )
    return (weak or conditioned)[-1]
