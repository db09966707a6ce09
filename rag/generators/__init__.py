"""Generators: chat messages in, streamed text out. The protocol and loading live in base.py; each
backend is one module here, found by its name (see base.load_generator)."""

from .base import Generator, load_generator

__all__ = ["Generator", "load_generator"]
