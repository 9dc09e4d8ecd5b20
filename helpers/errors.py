"""Error types that tell the reader which file or folder is wrong and how."""

from __future__ import annotations


class DataError(ValueError):
    """A data folder or file is missing or malformed; the message names the path and the problem."""
