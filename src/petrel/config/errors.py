"""The one error the configuration reader raises."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem, located at ``file:line``; ``key`` names the setting if any.

    ``str(error)`` is ``"file:line: message"`` so users can jump straight to the place.
    """

    def __init__(self, message: str, file: str, line: int, key: str | None = None) -> None:
        super().__init__(message, file, line, key)
        self.message = message
        self.file = file
        self.line = line
        self.key = key

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"
