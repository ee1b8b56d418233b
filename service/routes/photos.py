"""Photos by id: metadata, the image and its thumbnail streamed from the blob store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from service.deps import MayManageObjects, MayReadObjects, RuntimeDep, ServicesDep
from service.operations import catalogue as ops
from service.schemas import DbId, Deleted, PhotoOut

router = APIRouter(prefix="/api/v1/photos", tags=["photos"])

_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "the image"}
}


def _stream(services: ServicesDep, key: str, content_type: str, etag: str) -> StreamingResponse:
    fh = services.blobs.open(key)

    def chunks() -> Iterator[bytes]:
        with fh:
            while chunk := fh.read(256 * 1024):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type=content_type,
        headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{etag}"'},
    )


@router.get(
    "/{photo_id}",
    response_model=PhotoOut,
    summary="Photo metadata (roles: registrar (own), investigator, analyst)",
)
def get_photo(photo_id: DbId, user: MayReadObjects, runtime: RuntimeDep) -> PhotoOut:
    photo = ops.readable_photo(runtime, user, photo_id)
    return ops.photo_out(photo)


@router.get(
    "/{photo_id}/image",
    response_class=StreamingResponse,
    responses=_IMAGE,
    summary="The full image (roles: registrar (own), investigator, analyst)",
)
def photo_image(
    photo_id: DbId, user: MayReadObjects, runtime: RuntimeDep, services: ServicesDep
) -> StreamingResponse:
    photo = ops.readable_photo(runtime, user, photo_id)
    return _stream(services, photo.blob_key, f"image/{photo.format.lower()}", photo.sha256)


@router.get(
    "/{photo_id}/thumbnail",
    response_class=StreamingResponse,
    responses=_IMAGE,
    summary="A JPEG thumbnail (roles: registrar (own), investigator, analyst)",
)
def photo_thumbnail(
    photo_id: DbId, user: MayReadObjects, runtime: RuntimeDep, services: ServicesDep
) -> StreamingResponse:
    photo = ops.readable_photo(runtime, user, photo_id)
    return _stream(services, photo.thumbnail_key, "image/jpeg", photo.sha256 + "-t")


@router.delete("/{photo_id}", response_model=Deleted, summary="Delete a photo (role: registrar)")
def delete_photo(
    photo_id: DbId, user: MayManageObjects, runtime: RuntimeDep, services: ServicesDep
) -> Deleted:
    ops.delete_photo(runtime, services, user, photo_id)
    return Deleted(deleted=f"photo {photo_id}")
