"""Exceptions that migtrace turns into one clear line and an exit code."""

from __future__ import annotations

from parsers.io import InputError


class UsageError(Exception):
    """Bad options or side files (exit code 2)."""


class EmptyTrace(InputError):
    """The inputs hold no trace events at all (exit code 2)."""


__all__ = ["EmptyTrace", "InputError", "UsageError"]
