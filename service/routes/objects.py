"""Catalogue objects and their photos. Registrars manage their own institution's objects;
investigators and analysts read every catalogue; a registrar reads only their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import ValidationError

from kernel.enums import ObjectStatus
from kernel.errors import InvalidInput
from kernel.schemas import ObjectUpdate, StatusChange
from service.deps import MayManageObjects, MayReadObjects, RuntimeDep, ServicesDep
from service.operations import catalogue as ops
from service.schemas import (
    Deleted,
    ObjectDetail,
    ObjectIn,
    ObjectOut,
    Page,
    PhotoOut,
    UploadOutcome,
)
from service.uploads import read_upload

router = APIRouter(prefix="/api/v1/objects", tags=["objects"])

_Text = Annotated[
    str | None,
    Query(max_length=200, description="Text in id, title, maker, inscriptions, description"),
]


@router.get(
    "",
    response_model=Page[ObjectOut],
    summary="List and filter objects (roles: registrar (own institution), investigator, analyst)",
)
def list_objects(
    user: MayReadObjects,
    runtime: RuntimeDep,
    status: Annotated[list[ObjectStatus] | None, Query()] = None,
    institution: Annotated[list[str] | None, Query()] = None,
    object_type: Annotated[str | None, Query(max_length=200)] = None,
    q: _Text = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 24,
) -> Page[ObjectOut]:
    return ops.list_objects(
        runtime,
        user,
        statuses=status,
        institutions=institution,
        object_type=object_type,
        text=q,
        page=page,
        page_size=page_size,
    )


@router.post("", response_model=ObjectOut, status_code=201, summary="New object (role: registrar)")
def create_object(body: ObjectIn, user: MayManageObjects, runtime: RuntimeDep) -> ObjectOut:
    return ops.create_object(runtime, user, body)


@router.get(
    "/{object_id}",
    response_model=ObjectDetail,
    summary="Record, photos, history (roles: registrar (own), investigator, analyst)",
)
def get_object(object_id: str, user: MayReadObjects, runtime: RuntimeDep) -> ObjectDetail:
    return ops.object_detail(runtime, user, object_id)


@router.patch("/{object_id}", response_model=ObjectOut, summary="Edit fields (role: registrar)")
def update_object(
    object_id: str, body: ObjectUpdate, user: MayManageObjects, runtime: RuntimeDep
) -> ObjectOut:
    return ops.update_object(runtime, user, object_id, body)


@router.post(
    "/{object_id}/status",
    response_model=ObjectOut,
    summary="Report stolen / missing / recovered, with loss details (role: registrar)",
)
def change_status(
    object_id: str, body: StatusChange, user: MayManageObjects, runtime: RuntimeDep
) -> ObjectOut:
    return ops.change_status(runtime, user, object_id, body)


@router.delete("/{object_id}", response_model=Deleted, summary="Delete (role: registrar)")
def delete_object(
    object_id: str, user: MayManageObjects, runtime: RuntimeDep, services: ServicesDep
) -> Deleted:
    ops.delete_object(runtime, services, user, object_id)
    return Deleted(deleted=f"object {object_id}")


@router.get(
    "/{object_id}/photos",
    response_model=list[PhotoOut],
    summary="Photos of an object (roles: registrar (own), investigator, analyst)",
)
def list_photos(object_id: str, user: MayReadObjects, runtime: RuntimeDep) -> list[PhotoOut]:
    return ops.photos_of(runtime, user, object_id)


@router.post(
    "/{object_id}/photos",
    response_model=list[UploadOutcome],
    status_code=201,
    summary="Upload one or more photos; a duplicate returns the stored photo (role: registrar)",
)
async def upload_photos(
    object_id: str,
    files: Annotated[list[UploadFile], File(description="One or more image files")],
    user: MayManageObjects,
    runtime: RuntimeDep,
    services: ServicesDep,
    view: Annotated[str | None, Form(max_length=100)] = None,
    views: Annotated[
        list[str] | None,
        Form(description="One view label per file, in order (front, back, detail, ...)"),
    ] = None,
) -> list[UploadOutcome]:
    data = await _read_files(runtime, files)
    return await ops.upload_photos(
        runtime, services, user, object_id, data, _labels(len(data), view, views)
    )


@router.post(
    "/with-photos",
    response_model=list[UploadOutcome],
    status_code=201,
    summary="New object and its photos, all or nothing (role: registrar)",
)
async def create_object_with_photos(
    record: Annotated[str, Form(max_length=100_000, description="The object, as JSON (ObjectIn)")],
    files: Annotated[list[UploadFile], File(description="One or more image files")],
    user: MayManageObjects,
    runtime: RuntimeDep,
    services: ServicesDep,
    views: Annotated[
        list[str] | None, Form(description="One view label per file, in order")
    ] = None,
) -> list[UploadOutcome]:
    try:
        body = ObjectIn.model_validate_json(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise InvalidInput(f"record: {where}: {first['msg']}") from None
    data = await _read_files(runtime, files)
    return await ops.create_object_with_photos(
        runtime, services, user, body, data, _labels(len(data), None, views)
    )


async def _read_files(runtime: RuntimeDep, files: list[UploadFile]) -> list[tuple[str, bytes]]:
    if len(files) > runtime.web.max_files:
        raise InvalidInput(f"at most {runtime.web.max_files} files per upload")
    limit = runtime.settings.max_upload_bytes
    return [
        (f.filename or f"file{i}", await read_upload(f, limit=limit)) for i, f in enumerate(files)
    ]


def _labels(count: int, view: str | None, views: list[str] | None) -> list[str | None]:
    """``views`` label the files one by one; a single ``view`` labels them all."""
    if views:
        if any(len(v) > 100 for v in views):
            raise InvalidInput("a view label has at most 100 characters")
        return list(views)
    return [view or None] * count
