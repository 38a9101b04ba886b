"""LLaRA: large language-recommendation assistant, as a library (never imports ray)."""

__version__ = "0.1.0"
