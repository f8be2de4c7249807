"""Frozen CLAP models behind one protocol (:class:`wsas.clap.base.Clap`).

Backends: ``tiny`` (offline default, trained here by ``wsas clap pretrain``) and ``laion`` (the
paper's LAION-CLAP, for users who have its checkpoint and text-encoder files).
"""

from wsas.clap.base import Clap, load_clap

__all__ = ["Clap", "load_clap"]
