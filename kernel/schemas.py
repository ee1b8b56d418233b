"""Domain records shared by the CLI, the pipelines and the API, in pydantic layers.

Field names follow the Object ID standard for describing cultural objects (Getty/ICOM), which
is what police and customs databases of stolen art expect.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from kernel.enums import Decision, ObjectStatus, ThresholdOn

__all__ = [
    "confidence_text",
    "OBJECT_ID_FIELDS",
    "ObjectBase",
    "ObjectCreate",
    "ObjectPublic",
    "ObjectStatus",
    "ObjectUpdate",
    "PhotoPublic",
    "RegionMatch",
    "SearchHit",
    "SearchResult",
    "StatusChange",
]


_Short = Field(default=None, max_length=500)
_Long = Field(default=None, max_length=4000)


class ObjectBase(BaseModel):
    """The Object ID record of one catalogue object."""

    model_config = ConfigDict(str_strip_whitespace=True)

    object_type: str | None = _Short
    materials_techniques: str | None = _Short
    measurements: str | None = _Short
    inscriptions_markings: str | None = _Long
    distinguishing_features: str | None = _Long
    title: str | None = _Short
    subject: str | None = _Short
    date_period: str | None = _Short
    maker: str | None = _Short
    description: str | None = _Long
    inventory_number: str | None = Field(default=None, max_length=200)


#: The descriptive fields a catalogue CSV may carry, by column name.
OBJECT_ID_FIELDS: tuple[str, ...] = tuple(ObjectBase.model_fields)


class ObjectCreate(ObjectBase):
    object_id: str = Field(min_length=1, max_length=200, pattern=r"^[^\s/][^/]*$")
    institution: str = Field(default="default", min_length=1, max_length=200)
    status: ObjectStatus = ObjectStatus.IN_COLLECTION


class ObjectUpdate(ObjectBase):
    pass


class StatusChange(BaseModel):
    status: ObjectStatus
    date: dt.date | None = None
    reference: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=2000)


class PhotoPublic(BaseModel):
    id: int
    sha256: str
    view: str | None
    width: int
    height: int
    blob_key: str
    thumbnail_key: str
    original_name: str | None = None


class ObjectPublic(ObjectBase):
    object_id: str
    institution: str
    status: ObjectStatus
    loss_date: dt.date | None = None
    loss_reference: str | None = None
    photo_count: int = 0


class SearchHit(BaseModel):
    rank: int
    object_id: str
    institution: str
    status: ObjectStatus
    title: str | None
    maker: str | None
    #: Cosine similarity of the global descriptors (first stage).
    similarity: float
    #: How much the geometric evidence proves (second stage): one minus the chance that
    #: unrelated photos show this many matching points; None when verification is off.
    confidence: float | None
    #: Geometrically consistent local-feature matches with the catalogue photo.
    inliers: int | None = None
    #: Keypoints stored for that catalogue photo (zero inliers say something only when both
    #: photos have plenty).
    photo_keypoints: int | None = None
    verified: bool = False
    #: The matched region of the query photo, (x0, y0, x1, y1) in its pixels.
    region: tuple[int, int, int, int] | None = None
    #: match (geometry verified), lead (similar, not verified) or none.
    decision: Decision = Decision.NONE
    #: ``decision == match``, kept for API clients written before `decision`.
    is_match: bool
    photo_id: int
    photo_view: str | None
    thumbnail_key: str
    loss_date: dt.date | None = None
    loss_reference: str | None = None


class RegionMatch(BaseModel):
    """One object found in one region of a (possibly multi-object) photo."""

    box: tuple[int, int, int, int]
    object_id: str
    confidence: float
    inliers: int
    #: Other objects that also verified on this region: they may be one object catalogued
    #: twice (a registrar should look).
    also: list[str] = []


class SearchResult(BaseModel):
    query_sha256: str
    query_size: tuple[int, int]
    #: What ``threshold`` applies to: the hits' ``confidence`` (with verification) or their
    #: ``similarity`` (global stage only).
    threshold_on: ThresholdOn
    threshold: float
    verification: bool
    model: str
    index_version: int
    objects_searched: int
    #: Catalogue photos the search could find (those the filters allow; None: not counted).
    photos_searched: int | None = None
    #: Keypoints of the query photo used for pairwise verification (None without it).
    query_keypoints: int | None = None
    statuses: list[ObjectStatus] | None
    institutions: list[str] | None
    hits: list[SearchHit]
    regions: list[RegionMatch] = []

    @property
    def matches(self) -> list[SearchHit]:
        return [h for h in self.hits if h.decision is Decision.MATCH]

    @property
    def leads(self) -> list[SearchHit]:
        return [h for h in self.hits if h.decision is Decision.LEAD]


def confidence_text(confidence: float) -> str:
    """A confidence for people: four decimals, and never 1 (no evidence is certainty)."""
    return ">0.9999" if confidence > 0.9999 else f"{confidence:.4f}"
