"""Errors that qadapter raises for its users.

Every user-facing failure is a :class:`QadapterError` whose message says what was got, what was expected and how
to fix it. The CLI prints such errors as one line, without a traceback.
"""

from __future__ import annotations


class QadapterError(Exception):
    """A problem with the user's input, files or environment, explained in one line."""


class DataError(QadapterError):
    """A data file is missing, empty or malformed."""


class ArtifactError(QadapterError):
    """A saved artifact (adapter folder, cache) cannot be loaded or written."""


class MissingExtraError(QadapterError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the package '{package}', which is not installed. "
            f"Install it with: pip install 'qadapter[{extra}]'"
        )
        self.package = package
        self.extra = extra
