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
    """A TinyCLAP briefly pretrained on the smoke corpus (enough to exercise the code, not to be good)."""
    from wsas.clap.tiny import pretrain

    path = smoke_corpus / "tinyclap.safetensors"
    pretrain(smoke_corpus, path, steps=15, batch=12, progress=False)
    return path
