"""The API URLs that responses and pages link to (one place, so the API's paths are spelled
once outside its routers)."""

from __future__ import annotations

__all__ = [
    "API",
    "evidence_url",
    "job_report_url",
    "object_url",
    "photo_image_url",
    "photo_thumbnail_url",
]

API = "/api/v1"


def object_url(object_id: str) -> str:
    return f"{API}/objects/{object_id}"


def photo_image_url(photo_id: int) -> str:
    return f"{API}/photos/{photo_id}/image"


def photo_thumbnail_url(photo_id: int) -> str:
    return f"{API}/photos/{photo_id}/thumbnail"


def evidence_url(search_id: int, photo_id: int) -> str:
    return f"{API}/searches/{search_id}/evidence/{photo_id}.png"


def job_report_url(job_id: str, suffix: str) -> str:
    return f"{API}/jobs/{job_id}/report.{suffix}"
