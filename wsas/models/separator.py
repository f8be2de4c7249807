"""Waveform-level wrapper around the U-Net: STFT in, masks, masked magnitudes with the mixture phase
out."""

from __future__ import annotations

import torch
from torch import nn

from wsas.audio import istft, log_magnitude, stft
from wsas.models.unet import ConditionalUNet, UNetConfig


class MaskSeparator(nn.Module):
    """``masks(mixture (B, S), queries (B, K, D)) -> masks (B, K, F, T), spec (B, F, T)``."""

    def __init__(self, config: UNetConfig, sample_rate: int):
        super().__init__()
        self.config, self.sample_rate = config, sample_rate
        self.unet = ConditionalUNet(config).to(
            memory_format=torch.channels_last
        )  # faster convolutions on CPU

    def spectrogram(self, wave: torch.Tensor) -> torch.Tensor:
        """Complex STFT ``(..., S) -> (..., F, T)`` with the model's settings."""
        return stft(wave, self.config.n_fft, self.config.hop)

    def masks(
        self, mixture: torch.Tensor, queries: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self.spectrogram(mixture)
        return self.unet(log_magnitude(spec.abs()), queries), spec

    def to_waves(self, masks: torch.Tensor, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Masked mixture spectrogram (mixture phase) back to waveforms ``(B, K, S)``."""
        return istft(masks * spec.unsqueeze(1), self.config.n_fft, self.config.hop, length)

    def forward(self, mixture: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """Separate ``mixture (B, S)`` into one waveform per query: ``(B, K, S)``."""
        masks, spec = self.masks(mixture, queries)
        return self.to_waves(masks, spec, mixture.shape[-1])
