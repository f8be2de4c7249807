"""Shared fixtures: a smoke-preset corpus rendered once per test session."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def smoke_corpus(tmp_path_factory):
    from wsas.data.synth import build_corpus
    from wsas.presets import PRESETS

    root = tmp_path_factory.mktemp("smoke_corpus")
    build_corpus(PRESETS["smoke"], root, progress=False)
    return root


@pytest.fixture(scope="session")
def smoke_clap(smoke_corpus):
    """A TinyCLAP briefly pretrained on the smoke corpus (enough to exercise the code, not to be
    good)."""
    from wsas.clap.pretrain import pretrain

    path = smoke_corpus / "tinyclap.safetensors"
    pretrain(smoke_corpus, path, steps=15, batch=12, progress=False)
    return path


@pytest.fixture(scope="session")
def smoke_separator(smoke_corpus, smoke_clap, tmp_path_factory):
    """A weak-regime separator trained for a few steps on the smoke corpus (its checkpoint path)."""
    from wsas.clap import load_clap
    from wsas.data.datasets import load_embedded
    from wsas.presets import TrainConfig
    from wsas.train import Trainer

    out = tmp_path_factory.mktemp("separator")
    config = TrainConfig(
        mode="weak",
        steps=2,
        batch_size=4,
        val_every=2,
        val_mixtures=4,
        unet={"channels": 4, "levels": 3, "convs_per_block": 1},
    )
    train, val = load_embedded(smoke_corpus, "train"), load_embedded(smoke_corpus, "val")
    Trainer(config, load_clap("tiny", smoke_clap), out, train, val).run(progress=False)
    return out / "checkpoint.safetensors"
