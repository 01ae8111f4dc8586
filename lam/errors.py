"""Exceptions LAM raises on purpose, so callers can tell them from bugs."""


class LAMError(Exception):
    """Base class of LAM's own errors."""


class WeightsError(LAMError, OSError):
    """Model files are missing, corrupt, mismatched or cannot be fetched."""


class LAMIndexError(LAMError):
    """An index file is corrupt, from another model or another schema, or cannot be opened."""
