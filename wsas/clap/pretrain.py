"""TinyCLAP pretraining (contrastive, on the corpus's own ``clap`` split) and its evaluation."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from wsas.clap.base import Clap
from wsas.clap.tiny import SIZES, TinyClap, config_is_size
from wsas.data.datasets import ClipSet, load_embedded
from wsas.data.mixing import sample_batch
from wsas.errors import WsasError


def info_nce(audio: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over matched rows of ``audio (B, D)`` and ``text (B, D)`` (CLIP's loss)."""
    logits = scale * audio @ text.T
    target = torch.arange(len(audio), device=audio.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def class_phrasings(clips: ClipSet) -> dict[int, tuple[str, ...]]:
    """The caption phrasings of each class label of ``clips``."""
    return {int(label): phr for label, phr in zip(clips.labels.tolist(), clips.phrasings)}


def pretrain(
    corpus: str | os.PathLike,
    out: str | os.PathLike,
    steps: int = 1500,
    batch: int = 24,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    size: str = "full",
    text_from: TinyClap | None = None,
) -> TinyClap:
    """Train TinyCLAP of ``size`` (a key of ``wsas.clap.tiny.SIZES``) contrastively on the
    ``clap`` split of an embedded corpus; save to ``out``.

    Each batch holds single clips of distinct classes (text: a random phrasing or the label
    prompt) and 2-source mixtures with composed captions, at random gains. A size with a
    ``"text_from"`` size (``wsas.clap.tiny.SIZES``) takes ``text_from``, a pretrained TinyCLAP of
    that size: its text projection is copied and frozen, only the audio tower learns (into that
    model's text space), and every caption embeds exactly as through ``text_from``.
    """
    if size not in SIZES:
        raise WsasError(f"unknown TinyCLAP size '{size}'; choose one of {', '.join(SIZES)}")
    check_text_donor(size, text_from)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    clips = load_embedded(corpus, "clap")
    phrasings = class_phrasings(clips)
    model = TinyClap({"sample_rate": clips.sr, **SIZES[size]})
    if text_from is not None:
        model.text_proj.load_state_dict(text_from.text_proj.state_dict())
        model.text_proj.requires_grad_(False)
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    n_single = min(batch // 2 + batch // 4, len(clips.prompts))
    bar = tqdm(range(steps), desc="pretraining TinyCLAP", disable=not progress)
    for _ in bar:
        singles = sample_batch(clips, 1, n_single, rng, gain_db=(-10, 10))
        pairs = sample_batch(clips, batch - n_single, 2, rng, gain_db=(-6, 6))
        waves = torch.cat([singles.sources[0, 0], pairs.mixtures[:, 0]])
        texts = [
            clips.prompts[c] if rng.random() < 0.3 else p[rng.integers(len(p))]
            for c, p in ((int(c), phrasings[int(c)]) for c in singles.labels[0, 0])
        ] + [c[0] for c in pairs.captions]
        loss = info_nce(
            model.embed_audio(waves, clips.sr), model.embed_text(texts), model.logit_scale
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.save(out, {"pretrain_steps": steps, "seed": seed})
    model.checkpoint = str(out)
    return model.freeze()


def check_text_donor(size: str, text_from: Clap | None) -> None:
    """A one-line error unless ``text_from`` is a TinyCLAP of the size whose text space ``size``
    learns into (``SIZES[size]["text_from"]``), or None for a size that learns its own."""
    donor = SIZES[size].get("text_from")
    if donor is None and text_from is not None:
        raise WsasError(f"a {size} TinyCLAP learns its own text projection: pass no text_from")
    if donor is not None and not (
        isinstance(text_from, TinyClap) and config_is_size(text_from.config, donor)
    ):
        raise WsasError(
            f"a {size} TinyCLAP learns into the text space of a pretrained {donor} TinyCLAP: "
            f"pass one as text_from"
        )


@torch.no_grad()
def evaluate_clap(model: Clap, corpus: str | os.PathLike, split: str = "test") -> dict:
    """Zero-shot classification accuracy (label prompts) and text->audio recall@1 on single
    clips."""
    clips = load_embedded(corpus, split)
    audio = torch.cat([model.embed_audio(w, clips.sr) for w in clips.waves.split(64)])
    predicted = (audio @ model.embed_text(list(clips.prompts)).T).argmax(-1)
    pairs = [(c, p) for c, phr in sorted(class_phrasings(clips).items()) for p in phr]
    best = (model.embed_text([p for _, p in pairs]) @ audio.T).argmax(-1)
    recall = np.mean([int(clips.labels[b]) == c for (c, _), b in zip(pairs, best.tolist())])
    accuracy = float((predicted == clips.labels).float().mean())
    return {
        "split": split,
        "clips": len(clips),
        "classes": len(clips.class_names),
        "zero_shot_accuracy": accuracy,
        "text_to_audio_recall@1": float(recall),
    }
