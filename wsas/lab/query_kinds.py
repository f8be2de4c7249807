"""Text queries against queries by example, on the same test mixtures.

Each source of a fixed 2-source test mixture is separated twice: queried by its label prompt
(the CLAP text tower), and by another clip of its class from the same split (the CLAP audio
tower: a query by example). The paired difference of their SI-SDR says what a user gives up, or
gains, by showing the model the sound instead of naming it.

    python -m wsas.lab.query_kinds RUN... --data CORPUS [--pairs N] [--out FILE.json]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from wsas.bundle import load_run
from wsas.data.datasets import ClipSet, load_clips
from wsas.data.mixing import fixed_pairs
from wsas.lab.stats import mean_ci, paired_difference
from wsas.losses import si_sdr
from wsas.results import write_json
from wsas.separate import Separator


def example_clips(clips: ClipSet, sources: torch.Tensor, labels: torch.Tensor, seed: int = 0):
    """For each source ``(P, N, S)`` of class ``labels (P, N)``: another clip of its class from
    ``clips`` (never the source itself), drawn with ``seed``; ``(P, N, S)``."""
    rng = np.random.default_rng(seed)
    by_class = {int(c): (clips.labels == c).nonzero().flatten() for c in clips.labels.unique()}
    out = torch.empty_like(sources)
    for p, n in np.ndindex(*labels.shape):
        pool = by_class[int(labels[p, n])]
        others = [i for i in pool.tolist() if not torch.equal(clips.waves[i], sources[p, n])]
        out[p, n] = clips.waves[others[rng.integers(len(others))]]
    return out


@torch.no_grad()
def compare(run: str, data: str, n_pairs: int = 120, batch: int = 16) -> dict:
    """SI-SDR of text and audio queries on ``n_pairs`` fixed test mixtures of ``data``, and
    their paired difference (audio minus text)."""
    bundle = load_run(run)
    sep = Separator(bundle.model, bundle.clap, bundle.config, torch.device("cpu"))
    sr = bundle.config["sample_rate"]
    clips = load_clips(data, "test", sr)
    pairs = fixed_pairs(clips, n_pairs)
    refs, labels, mixtures = pairs.sources[:, 0], pairs.labels[:, 0], pairs.mixtures[:, 0]
    examples = example_clips(clips, refs, labels)
    scores = {"text": [], "audio": []}
    for start in range(0, n_pairs, batch):
        rows = slice(start, start + batch)
        texts = [clips.prompts[int(c)] for c in labels[rows].flatten()]
        shape = labels[rows].shape  # the model's own query form (pooled, or tokens for cross)
        by_text = sep.query(texts)
        by_text = by_text.reshape(*shape, *by_text.shape[1:])
        pooled = bundle.clap.embed_audio(examples[rows].flatten(0, 1), sr).float()
        by_audio = torch.cat([sep.as_query(e[None]) for e in pooled])
        by_audio = by_audio.reshape(*shape, *by_audio.shape[1:])
        for kind, queries in (("text", by_text), ("audio", by_audio)):
            estimates = bundle.model(mixtures[rows], queries.float()).float()
            scores[kind].append(si_sdr(estimates.double(), refs[rows].double()).flatten())
    text, audio = (torch.cat(scores[k]).numpy() for k in ("text", "audio"))
    difference = paired_difference(audio, text)
    return {
        "run": str(run),
        "mode": bundle.config["train"]["mode"],
        "pairs": n_pairs,
        "text_si_sdr": list(mean_ci(text)),
        "audio_si_sdr": list(mean_ci(audio)),
        "audio_minus_text_si_sdr": list(difference),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wsas.lab.query_kinds", description=__doc__)
    parser.add_argument("runs", nargs="+", help="run folders, checkpoints or shipped bundles")
    parser.add_argument("--data", required=True, help="an embedded corpus folder")
    parser.add_argument("--pairs", type=int, default=120)
    parser.add_argument("--out", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    rows = [compare(run, args.data, args.pairs) for run in args.runs]
    for r in rows:
        t, a, d = r["text_si_sdr"], r["audio_si_sdr"], r["audio_minus_text_si_sdr"]
        print(
            f"{r['run']}: text {t[0]:.2f} dB, audio {a[0]:.2f} dB SI-SDR, audio - text "
            f"{d[0]:+.2f} [{d[1]:+.2f}, {d[2]:+.2f}] on {r['pairs']} mixtures"
        )
    if args.out:
        write_json(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
