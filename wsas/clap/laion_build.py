"""LAION-CLAP's architecture (HTSAT audio tower, RoBERTa text tower) built offline, random weights.

``laion_clap``'s model code is imported without its package ``__init__`` (which pulls in its
training data loaders and a downloader), from a ``pip install --no-deps laion-clap==1.1.7
torchlibrosa==0.1.0`` (the ``laion`` extra and ``make`` install it so). Modules its model code
imports at the top but never calls on the path used here (``h5py``; ``torchvision``'s
``FrozenBatchNorm2d``; ``librosa``'s window and mel functions, which only initialise buffers
that a checkpoint overwrites) are stood in for while importing where they are missing, and
removed from ``sys.modules`` afterwards. The RoBERTa text tower is built from roberta-base's
configuration written here instead of being fetched from a hub.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import torch

from wsas.errors import WsasError

INSTALL = "pip install --no-deps laion-clap==1.1.7 torchlibrosa==0.1.0"
# roberta-base's configuration (the text tower of every published LAION-CLAP checkpoint)
ROBERTA_BASE = dict(
    vocab_size=50265,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=514,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)
CONTEXT = 77  # tokens per text, as laion_clap's tokenizer pads and cuts


def _librosa_standin() -> types.ModuleType:
    """``librosa.filters.get_window / mel`` and ``librosa.util.pad_center / normalize`` as
    torchlibrosa calls them (scipy's windows; torchaudio's Slaney mel filters)."""
    import scipy.signal
    import torchaudio

    def mel(sr, n_fft, n_mels, fmin, fmax, **_):
        bank = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, fmin, fmax, n_mels, sr, norm="slaney", mel_scale="slaney"
        )
        return bank.T.numpy()

    def pad_center(x, size, **_):
        left = (size - len(x)) // 2
        return np.pad(x, (left, size - len(x) - left))

    def normalize(x, norm=None, **_):
        return x if norm is None else x / np.abs(x).max()

    lib = types.ModuleType("librosa")
    lib.filters = types.SimpleNamespace(
        get_window=lambda window, n, fftbins=True: scipy.signal.get_window(window, n, fftbins),
        mel=mel,
    )
    lib.util = types.SimpleNamespace(pad_center=pad_center, normalize=normalize)
    return lib


def _unused_standins() -> dict[str, types.ModuleType]:
    class FrozenBatchNorm2d:  # freeze_batch_norm_2d only, never called here
        def __init__(self, *args, **kwargs):
            raise WsasError("laion_clap's FrozenBatchNorm2d needs torchvision")

    vision, ops, misc = (types.ModuleType(n) for n in ("torchvision", "ops", "misc"))
    misc.FrozenBatchNorm2d, ops.misc, vision.ops = FrozenBatchNorm2d, misc, ops
    return {
        "h5py": types.ModuleType("h5py"),
        "torchvision": vision,
        "torchvision.ops": ops,
        "torchvision.ops.misc": misc,
        "librosa": _librosa_standin(),
    }


@contextlib.contextmanager
def _standins():
    """The stand-ins in ``sys.modules`` for the packages that are missing, then removed."""
    added = {
        name: module
        for name, module in _unused_standins().items()
        if importlib.util.find_spec(name.split(".")[0]) is None
    }
    sys.modules.update(added)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)
        if "librosa" in added:  # torchlibrosa bound the stand-in: a later import gets it afresh
            for name in [k for k in sys.modules if k.startswith("torchlibrosa")]:
                del sys.modules[name]


@contextlib.contextmanager
def _bare_packages(root: Path):
    """``laion_clap`` and its ``clap_module`` as bare packages (no ``__init__`` run); every
    ``laion_clap`` module is dropped from ``sys.modules`` afterwards, so a later ``import
    laion_clap`` (real checkpoints) runs the package as published."""
    before = {k: v for k, v in sys.modules.items() if k.startswith("laion_clap")}
    for name, path in (("laion_clap", root), ("laion_clap.clap_module", root / "clap_module")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    try:
        yield
    finally:
        for name in [k for k in sys.modules if k.startswith("laion_clap")]:
            del sys.modules[name]
        sys.modules.update(before)


_MODEL_CODE: list[types.ModuleType] = []


def model_code() -> types.ModuleType:
    """``laion_clap.clap_module.model`` (the ``CLAP`` module and its towers), imported once."""
    if _MODEL_CODE:
        return _MODEL_CODE[0]
    spec = importlib.util.find_spec("laion_clap")
    if spec is None or spec.origin is None:
        raise WsasError(f"LAION-CLAP's architecture needs laion-clap: {INSTALL}")
    try:
        with _standins(), _bare_packages(Path(spec.origin).parent):
            module = importlib.import_module("laion_clap.clap_module.model")
    except ImportError as err:
        raise WsasError(
            f"LAION-CLAP's model code does not import ({err.name} missing): {INSTALL}"
        ) from None
    _MODEL_CODE.append(module)
    return module


def build(amodel: str) -> torch.nn.Module:
    """LAION-CLAP (``amodel``: ``HTSAT-tiny`` or ``HTSAT-base``, RoBERTa text tower, no fusion)
    with random weights, built from laion_clap's own configuration of ``amodel``."""
    from transformers import RobertaConfig, RobertaModel

    code = model_code()
    config_file = Path(code.__file__).parent / "model_configs" / f"{amodel}.json"
    if not config_file.is_file():
        raise WsasError(f"unknown LAION-CLAP audio tower '{amodel}'")
    config = json.loads(config_file.read_text())
    config["text_cfg"]["model_type"] = "roberta"

    class RandomRoberta:  # what CLAP.__init__ asks roberta-base from a hub for
        @staticmethod
        def from_pretrained(name: str) -> RobertaModel:
            return RobertaModel(RobertaConfig(**ROBERTA_BASE))

    hub, code.RobertaModel = code.RobertaModel, RandomRoberta
    try:
        return code.CLAP(**config, enable_fusion=False, fusion_type="None")
    finally:
        code.RobertaModel = hub


def hash_tokenizer(texts: list[str]) -> dict[str, torch.Tensor]:
    """A stand-in for the roberta-base tokenizer that needs no files (tests only): each word to a
    fixed id in RoBERTa's vocabulary, between ``<s>`` and ``</s>``, padded and cut to 77 tokens
    like laion_clap's; ``{"input_ids", "attention_mask"}`` of shape ``(N, 77)``."""
    ids = torch.full((len(texts), CONTEXT), ROBERTA_BASE["pad_token_id"], dtype=torch.long)
    for i, text in enumerate(texts):
        words = [
            3 + zlib.crc32(w.encode()) % (ROBERTA_BASE["vocab_size"] - 3) for w in text.split()
        ]
        row = [ROBERTA_BASE["bos_token_id"], *words[: CONTEXT - 2], ROBERTA_BASE["eos_token_id"]]
        ids[i, : len(row)] = torch.tensor(row)
    return {"input_ids": ids, "attention_mask": (ids != ROBERTA_BASE["pad_token_id"]).long()}
