"""wsas: weakly-supervised, text-queried audio separation (Mahmud et al., ICLR 2024), reproduced."""

__version__ = "0.1.0"
