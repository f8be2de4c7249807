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
