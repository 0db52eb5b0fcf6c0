"""Errors that stop a step with a message for the user rather than a traceback, kept free of
heavy imports so that the command line can catch them without loading torch."""

from __future__ import annotations


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


class ConfigError(ValueError):
    """A config value is invalid in a way the schema cannot express."""
