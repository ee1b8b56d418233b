"""Every closed set of values artmatch uses, as a `StrEnum` (the database, the API and the
reports store their values)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "LOST_STATUSES",
    "Decision",
    "JobStatus",
    "ObjectStatus",
    "Role",
    "ThresholdOn",
    "TokenKind",
]


class ObjectStatus(StrEnum):
    IN_COLLECTION = "in_collection"
    ON_LOAN = "on_loan"
    STOLEN = "stolen"
    MISSING = "missing"
    RECOVERED = "recovered"


#: Statuses an investigator is looking for.
LOST_STATUSES = (ObjectStatus.STOLEN, ObjectStatus.MISSING)


class Role(StrEnum):
    REGISTRAR = "registrar"
    INVESTIGATOR = "investigator"
    ANALYST = "analyst"
    ADMIN = "admin"
    AUDITOR = "auditor"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class TokenKind(StrEnum):
    #: A bearer token for scripts (`artmatch create-token`).
    API = "api"
    #: A browser login (the session cookie).
    SESSION = "session"


class ThresholdOn(StrEnum):
    """The quantity a match threshold applies to."""

    #: The calibrated probability that a candidate is the object (with verification).
    CONFIDENCE = "confidence"
    #: The cosine similarity of the global descriptors (first stage alone).
    SIMILARITY = "similarity"


class Decision(StrEnum):
    """What a search says about one candidate object."""

    #: Geometry verified: enough matching points under a plausible homography, in a region
    #: of the photo consistent with the object. Evidence.
    MATCH = "match"
    #: Similar, not verified: the global descriptors are close but the geometry cannot prove
    #: it (textureless works, small 3-D objects). A lead to check, never called a match.
    LEAD = "lead"
    #: Neither.
    NONE = "none"
