"""The real LAION-CLAP (the paper's CLAP): HTSAT audio tower at 48 kHz, RoBERTa text tower.

Real weights need laion-clap with its dependencies (``pip install laion-clap==1.1.7``), a
checkpoint file (argument or ``WSAS_LAION_CKPT``) and the ``roberta-base`` tokenizer/model in the
Hugging Face cache (``HF_HOME``), since laion_clap builds its text tower from there. Nothing is
downloaded: missing files are named in the error. :meth:`LaionClap.random` builds the same
architecture with random weights and a stand-in tokenizer, offline (tests, speed checks; see
:mod:`wsas.clap.laion_build`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from wsas.audio import resample_differentiable
from wsas.clap.base import Clap
from wsas.errors import WsasError

# Audio tower of each published checkpoint (loading one into the wrong tower fails on shapes).
AUDIO_MODEL = {
    "630k-best.pt": "HTSAT-tiny",
    "630k-audioset-best.pt": "HTSAT-tiny",
    "630k-fusion-best.pt": "HTSAT-tiny",
    "630k-audioset-fusion-best.pt": "HTSAT-tiny",
    "music_audioset_epoch_15_esc_90.14.pt": "HTSAT-base",
    "music_speech_epoch_15_esc_89.25.pt": "HTSAT-base",
    "music_speech_audioset_epoch_15_esc_89.98.pt": "HTSAT-base",
}
CLAP_SAMPLES = 480_000  # 10 s at 48 kHz, the tower's input length


def audio_model(checkpoint: str | os.PathLike) -> str:
    """The audio tower of a checkpoint file (by its published name; others: ``HTSAT-tiny``)."""
    return AUDIO_MODEL.get(Path(checkpoint).name, "HTSAT-tiny")


class LaionClap(Clap):
    """Adapter from ``laion_clap.CLAP_Module`` to the :class:`Clap` protocol (differentiable audio
    path)."""

    backend, weights_travel = "laion", False  # ~600 MB: bundles reference the checkpoint file
    sample_rate, embed_dim, token_dim = 48_000, 512, 768  # token states: RoBERTa's

    def __init__(
        self, checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu"
    ):
        super().__init__()
        module = self._load(checkpoint, device)
        self.model, self.tokenize = module.model, module.tokenizer

    @classmethod
    def random(cls, amodel: str = "HTSAT-tiny", device: str | torch.device = "cpu") -> LaionClap:
        """The architecture of ``amodel`` with random weights and the stand-in tokenizer (no
        files, no hub; tests and speed checks: its embeddings mean nothing)."""
        from wsas.clap.laion_build import build, hash_tokenizer

        clap = cls.__new__(cls)
        Clap.__init__(clap)
        clap.model, clap.tokenize = build(amodel).to(device), hash_tokenizer
        return clap

    @staticmethod
    def _load(checkpoint: str | os.PathLike | None, device: str | torch.device):
        """``laion_clap.CLAP_Module`` with the weights of ``checkpoint``."""
        path = Path(checkpoint or os.environ.get("WSAS_LAION_CKPT", ""))
        if not str(path) or not path.is_file():
            raise WsasError(
                f"LAION-CLAP checkpoint not found: '{path}' (pass --clap-checkpoint or set "
                "WSAS_LAION_CKPT to e.g. music_audioset_epoch_15_esc_90.14.pt)"
            )
        try:
            import laion_clap
        except ImportError:
            raise WsasError(
                "the LAION-CLAP backend needs laion-clap: pip install -e '.[laion]'"
            ) from None
        if "fusion" in path.name:
            raise WsasError(
                f"{path.name}: fusion checkpoints crop long audio non-differentiably; "
                "use a non-fusion one"
            )
        try:
            module = laion_clap.CLAP_Module(
                enable_fusion=False,
                amodel=audio_model(path),
                device=str(device),
            )
            module.load_ckpt(str(path), verbose=False)
        except OSError as err:
            raise WsasError(
                "LAION-CLAP needs the roberta-base tokenizer and weights in the Hugging Face cache "
                f"(HF_HOME) and cannot download them offline: {str(err).splitlines()[0]}"
            ) from None
        return module

    @classmethod
    def load(
        cls, checkpoint: str | os.PathLike | None, device: str | torch.device = "cpu"
    ) -> LaionClap:
        return cls(checkpoint, device=device)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale_a.exp()

    def _tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        device = self.model.logit_scale_a.device
        return {k: v.to(device) for k, v in self.tokenize(list(texts)).items()}

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return self.model.get_text_embedding(self._tokens(texts))

    def embed_text_tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """RoBERTa's last hidden states ``(B, 77, 768)`` and the mask ``(B, 77)`` of real tokens
        (``<s>`` and ``</s>`` included)."""
        tokens = self._tokens(texts)
        out = self.model.text_branch(**tokens)["last_hidden_state"]
        return out, tokens["attention_mask"].bool()

    def embed_audio(self, wave: torch.Tensor, sr: int) -> torch.Tensor:
        """Differentiable path: resample to 48 kHz, pad/crop to 10 s, HTSAT, projection (no int16
        rounding)."""
        wave = resample_differentiable(wave, sr, self.sample_rate)
        wave = F.pad(wave, (0, max(0, CLAP_SAMPLES - wave.shape[-1])))[..., :CLAP_SAMPLES]
        model = self.model
        device = next(model.parameters()).device
        batch = {
            "waveform": wave.to(device),
            "longer": torch.zeros(len(wave), dtype=torch.bool, device=device),
        }
        embedding = model.audio_projection(model.encode_audio(batch, device=device)["embedding"])
        return F.normalize(embedding, dim=-1)
