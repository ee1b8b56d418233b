"""The exceptions artmatch raises, one tree for the whole code base.

    ArtmatchError                 base: carries a one-line, user-readable message
    ├── InvalidImage              corrupt, empty, truncated, oversized or unsupported image
    ├── InvalidInput              malformed record, manifest row or argument
    ├── NotFound                  unknown object, photo, institution, job
    ├── Conflict                  duplicate upload, an id that belongs to someone else
    ├── StorageError              a blob store or database failed underneath us
    ├── IndexNotReady             the vector index cannot be used (missing, wrong model)
    └── ConfigError               settings that cannot work together

Domain code raises these; the HTTP edge maps them to a status code and a JSON body and the
command line prints the message and exits non-zero. Nothing below `service/` imports FastAPI.
"""

from __future__ import annotations

__all__ = [
    "ArtmatchError",
    "ConfigError",
    "Conflict",
    "IndexNotReady",
    "InvalidImage",
    "InvalidInput",
    "NotFound",
    "StorageError",
]


class ArtmatchError(Exception):
    """Base of every error artmatch raises on purpose."""

    #: A short machine-readable code, used in API error bodies.
    code = "artmatch_error"

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.message = message
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class InvalidImage(ArtmatchError):
    code = "invalid_image"


class InvalidInput(ArtmatchError):
    code = "invalid_input"


class NotFound(ArtmatchError):
    code = "not_found"


class Conflict(ArtmatchError):
    code = "conflict"


class StorageError(ArtmatchError):
    code = "storage_error"


class IndexNotReady(ArtmatchError):
    code = "index_not_ready"


class ConfigError(ArtmatchError):
    code = "config_error"
