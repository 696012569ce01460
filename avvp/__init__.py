"""Weakly-supervised audio-visual video parsing (AVVP) on the LLP dataset."""

__version__ = "0.1.0"
