"""brainalign: how closely language models align with the human brain and with human reading behaviour."""

__version__ = "0.1.0"
