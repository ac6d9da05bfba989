"""Exceptions users see: each names the file and the place in it."""

from __future__ import annotations


class TokenmillError(Exception):
    """Base for errors a user can act on; the CLI prints them without a traceback."""


class ConfigError(TokenmillError):
    """A config file is invalid: the message names the file and the key path."""


class InputError(TokenmillError):
    """An input file is unreadable or malformed: the message names the file, the place and the field."""

    def __init__(self, path: str, where: str, problem: str):
        self.path, self.where, self.problem = path, where, problem
        shown = path.removeprefix("file://") if path.startswith("file:///") else path  # a local file: its path
        super().__init__(f"{shown}: {where}: {problem}")


class OutputError(TokenmillError):
    """An output path may not be written (it would destroy data, or another run holds it)."""
