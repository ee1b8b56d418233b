"""Catalogue objects and their photos: browse (registrars their own institution only,
investigators and analysts everything), create, edit, report, delete, upload photos."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from engine.services import Services
from ingest.duplicates import duplicate_message
from ingest.photos import Outcome, PhotoItem, ingest_photos, sync_index
from kernel.enums import ObjectStatus
from kernel.errors import Conflict, InvalidImage, InvalidInput, NotFound
from kernel.i18n import N_
from kernel.schemas import ObjectCreate, ObjectPublic, ObjectUpdate, StatusChange
from models.local_features import FEATURES_KEY
from service.deps import Principal
from service.errors import Forbidden
from service.operations import alerts
from service.operations.links import object_url, photo_image_url, photo_thumbnail_url
from service.operations.uploads import check_images, is_image, not_image_message, view_labels
from service.policy import Action
from service.runtime import Runtime
from service.schemas import (
    ObjectDetail,
    ObjectIn,
    ObjectOut,
    Page,
    PhotoOut,
    PossibleDuplicateOut,
    StatusEventOut,
    UploadOutcome,
)
from storage.catalogue.browse import PhotoRecord
from storage.features import feature_key

__all__ = [
    "change_status",
    "create_object",
    "create_object_with_photos",
    "delete_object",
    "delete_photo",
    "institution_names",
    "list_objects",
    "object_detail",
    "object_types",
    "photo_out",
    "photos_of",
    "readable_object",
    "readable_photo",
    "update_object",
    "upload_photos",
]


def photo_out(p: PhotoRecord) -> PhotoOut:
    return PhotoOut(
        id=p.id,
        object_id=p.object_id,
        sha256=p.sha256,
        view=p.view,
        width=p.width,
        height=p.height,
        original_name=p.original_name,
        image_url=photo_image_url(p.id),
        thumbnail_url=photo_thumbnail_url(p.id),
        created_at=p.created_at,
    )


def _check_read(principal: Principal, institution: str) -> None:
    if not principal.may_on(Action.READ_OBJECTS, institution):
        # Same answer as an unknown id: a registrar learns nothing of other catalogues.
        raise NotFound(N_("no such object in the catalogues you may read"))


def _check_manage(principal: Principal, institution: str) -> None:
    if not principal.may_on(Action.MANAGE_OBJECTS, institution):
        raise Forbidden(
            f"only registrars of {institution!r} may change its objects"
            if principal.may(Action.MANAGE_OBJECTS)
            else f"the role {principal.role.value} may not change catalogues"
        )


def readable_object(rt: Runtime, principal: Principal, object_id: str) -> str:
    """The institution of an object the caller may read (404 otherwise)."""
    institution = rt.queries.object_institution(object_id)
    _check_read(principal, institution)
    return institution


def readable_photo(rt: Runtime, principal: Principal, photo_id: int) -> PhotoRecord:
    """A photo of an object the caller may read (404 otherwise)."""
    photo = rt.queries.photo(photo_id)
    readable_object(rt, principal, photo.object_id)
    return photo


def photos_of(rt: Runtime, principal: Principal, object_id: str) -> list[PhotoOut]:
    readable_object(rt, principal, object_id)
    return [photo_out(p) for p in rt.queries.photos_of(object_id)]


def list_objects(
    rt: Runtime,
    principal: Principal,
    *,
    statuses: Sequence[ObjectStatus] | None,
    institutions: Sequence[str] | None,
    object_type: str | None,
    text: str | None,
    page: int,
    page_size: int,
) -> Page[ObjectOut]:
    """One page of the objects the caller may read, with their first photo's thumbnail."""
    own = principal.institution_scope
    if own is not None:
        if institutions and set(institutions) != {own}:
            raise Forbidden(N_("registrars browse their own institution's catalogue only"))
        institutions = [own]
    items, total = rt.queries.list_objects(
        offset=(page - 1) * page_size,
        limit=page_size,
        statuses=statuses,
        institutions=institutions,
        object_type=object_type,
        text=text,
    )
    thumbs = rt.queries.first_photos([o.object_id for o in items])
    out = [
        ObjectOut(
            **o.model_dump(),
            url=object_url(o.object_id),
            thumbnail_url=photo_thumbnail_url(thumbs[o.object_id])
            if o.object_id in thumbs
            else None,
        )
        for o in items
    ]
    return Page[ObjectOut](items=out, total=total, page=page, page_size=page_size)


def institution_names(rt: Runtime) -> list[str]:
    return [i.name for i in rt.queries.institutions()]


def object_types(rt: Runtime) -> list[str]:
    return rt.queries.object_types()


def object_detail(rt: Runtime, principal: Principal, object_id: str) -> ObjectDetail:
    readable_object(rt, principal, object_id)
    obj = rt.catalogue.get_object(object_id)
    photos = [photo_out(p) for p in rt.queries.photos_of(object_id)]
    history = [
        StatusEventOut(status=h.status.value, date=h.date, reference=h.reference, note=h.note)
        for h in rt.catalogue.status_history(object_id)
    ]
    return ObjectDetail(
        **obj.model_dump(),
        url=object_url(object_id),
        thumbnail_url=photos[0].thumbnail_url if photos else None,
        photos=photos,
        history=history,
    )


def object_out(obj: ObjectPublic) -> ObjectOut:
    return ObjectOut(**obj.model_dump(), url=object_url(obj.object_id))


def check_institution(rt: Runtime, name: str, *, create: bool) -> None:
    """A misspelt institution must not quietly become a new one: ask first (409)."""
    if not create and name not in institution_names(rt):
        raise Conflict(
            f"Institution {name!r} does not exist yet. Create it? "
            "(send create_institution=true to create it)"
        )


def _new_record(rt: Runtime, principal: Principal, body: ObjectIn) -> ObjectCreate:
    institution = body.institution or principal.account.institution or ""
    _check_manage(principal, institution)
    check_institution(rt, institution, create=body.create_institution)
    record = ObjectCreate(
        **body.model_dump(exclude={"institution", "create_institution"}), institution=institution
    )
    try:
        rt.catalogue.get_object(record.object_id)
    except NotFound:
        return record
    raise Conflict(f"object {record.object_id!r} already exists")


def create_object(rt: Runtime, principal: Principal, body: ObjectIn) -> ObjectOut:
    with rt.write_lock:
        record = _new_record(rt, principal, body)
        catalogue = rt.catalogue
        obj, _ = catalogue.upsert_object(record)
        if record.status is not ObjectStatus.IN_COLLECTION:
            obj = catalogue.set_status(record.object_id, StatusChange(status=record.status))
    _audit(rt, principal, "object_create", obj.object_id, institution=record.institution)
    return object_out(obj)


def update_object(
    rt: Runtime, principal: Principal, object_id: str, body: ObjectUpdate
) -> ObjectOut:
    _check_manage(principal, readable_object(rt, principal, object_id))
    with rt.write_lock:
        obj = rt.queries.update_object(object_id, body.model_dump(exclude_unset=True))
    _audit(rt, principal, "object_update", object_id, fields=sorted(body.model_fields_set))
    return object_out(obj)


def change_status(
    rt: Runtime, principal: Principal, object_id: str, change: StatusChange
) -> ObjectOut:
    _check_manage(principal, readable_object(rt, principal, object_id))
    with rt.write_lock:
        obj = rt.catalogue.set_status(object_id, change)
    _audit(rt, principal, "object_status", object_id, **change.model_dump(mode="json"))
    # A loss re-checks every listing already checked (in the background); a recovery
    # closes the object's alerts (their history stays).
    alerts.on_status_change(
        rt, object_id=object_id, status=change.status, actor=principal.account.username
    )
    return object_out(obj)


def _audit(rt: Runtime, principal: Principal, action: str, object_id: str, **details: Any) -> None:
    # Who changed which object: the audit chain (service.operations.searches shows it).
    rt.audit.append(
        actor=principal.account.username,
        action=action,
        subject=f"object {object_id}",
        details=details,
    )


def _forget_photos(services: Services, photos: Sequence[PhotoRecord]) -> None:
    if photos:
        ids = np.asarray([p.id for p in photos], dtype=np.int64)
        services.index.remove(ids)
        services.descriptors.remove(ids)
        sync_index(services)
        for p in photos:
            # The features' rows went with the photo's (cascade); their blob goes here.
            features = feature_key(sha256=p.sha256, method=FEATURES_KEY)
            for key in (p.blob_key, p.thumbnail_key, features):
                if services.blobs.exists(key):
                    services.blobs.delete(key)


def delete_object(rt: Runtime, services: Services, principal: Principal, object_id: str) -> None:
    _check_manage(principal, readable_object(rt, principal, object_id))
    with rt.write_lock:
        _forget_photos(services, rt.queries.delete_object(object_id))
    _audit(rt, principal, "object_delete", object_id)


def delete_photo(rt: Runtime, services: Services, principal: Principal, photo_id: int) -> None:
    photo = rt.queries.photo(photo_id)
    _check_read(principal, photo.institution)
    _check_manage(principal, photo.institution)
    with rt.write_lock:
        _forget_photos(services, [rt.queries.delete_photo(photo_id)])
    _audit(rt, principal, "photo_delete", photo.object_id, photo_id=photo_id)


async def upload_photos(
    rt: Runtime,
    services: Services,
    principal: Principal,
    object_id: str,
    files: Sequence[tuple[str, bytes]],
    views: Sequence[str | None],
) -> list[UploadOutcome]:
    """Add photos to an existing object, ``views[i]`` labelling ``files[i]``: the good photos
    are kept and the bad ones reported; a file that is no image is refused before it is
    read as one (all bad: an error)."""
    labels = view_labels(files, views)
    institution = await run_in_threadpool(readable_object, rt, principal, object_id)
    _check_manage(principal, institution)
    obj = await run_in_threadpool(rt.catalogue.get_object, object_id)
    record = ObjectCreate(object_id=obj.object_id, institution=obj.institution, status=obj.status)
    refused = {
        i: not_image_message(name) for i, (name, data) in enumerate(files) if not is_image(data)
    }
    kept = [i for i in range(len(files)) if i not in refused]
    ingested = iter(
        await _ingest(
            rt, services, principal, record, [files[i] for i in kept], [labels[i] for i in kept]
        )
        if kept
        else []
    )
    outcomes = [
        UploadOutcome(filename=files[i][0], outcome=Outcome.ERROR.value, message=refused[i])
        if i in refused
        else next(ingested)
        for i in range(len(files))
    ]
    if all(o.outcome == Outcome.ERROR.value for o in outcomes):
        raise InvalidImage("; ".join(o.message for o in outcomes) or "no photo in the upload")
    return outcomes


async def create_object_with_photos(
    rt: Runtime,
    services: Services,
    principal: Principal,
    body: ObjectIn,
    files: Sequence[tuple[str, bytes]],
    views: Sequence[str | None],
) -> list[UploadOutcome]:
    """A new object and its photos, all or nothing: an object without photos cannot be
    found by a search, so when any photo fails (or none is new) nothing is kept."""
    labels = view_labels(files, views)
    if not files:
        raise InvalidInput("a new object needs at least one photo")
    check_images(files)
    record = await run_in_threadpool(_new_record, rt, principal, body)
    outcomes = await _ingest(rt, services, principal, record, files, labels, audit=False)
    failed = [o for o in outcomes if o.outcome != Outcome.ADDED.value]
    if failed:

        def undo() -> None:
            # NotFound: no photo was added, so the object was never created.
            with rt.write_lock, contextlib.suppress(NotFound):
                _forget_photos(services, rt.queries.delete_object(record.object_id))

        await run_in_threadpool(undo)
        problems = "; ".join(f"{o.filename}: {o.message or o.outcome}" for o in failed)
        raise InvalidImage(f"object {record.object_id!r} not saved: {problems}")

    def finish() -> None:
        if record.status is not ObjectStatus.IN_COLLECTION:
            with rt.write_lock:
                rt.catalogue.set_status(record.object_id, StatusChange(status=record.status))
        _audit(rt, principal, "object_create", record.object_id, institution=record.institution)
        _audit(
            rt,
            principal,
            "photo_add",
            record.object_id,
            photo_ids=[o.photo.id for o in outcomes if o.photo is not None],
        )

    await run_in_threadpool(finish)
    return outcomes


async def _ingest(
    rt: Runtime,
    services: Services,
    principal: Principal,
    record: ObjectCreate,
    files: Sequence[tuple[str, bytes]],
    views: Sequence[str | None],
    *,
    audit: bool = True,
) -> list[UploadOutcome]:
    object_id = record.object_id
    items = [
        PhotoItem(record=record, source=name, load=_loader(data), view=view)
        for (name, data), view in zip(files, views, strict=True)
    ]

    def work() -> list[UploadOutcome]:
        with rt.write_lock:
            outcomes = ingest_photos(services, items)
        # Answer in the order the files were sent (ingest reports errors first).
        slots = [name for name, _ in files]
        order = []
        for o in outcomes:
            i = slots.index(o.source)
            slots[i] = None  # type: ignore[call-overload]
            order.append(i)
        outcomes = [o for _, o in sorted(zip(order, outcomes, strict=True), key=lambda t: t[0])]
        out = []
        for o in outcomes:
            photo = None
            if o.photo_id is not None:
                record = rt.queries.photo(o.photo_id)
                if principal.may_on(Action.READ_OBJECTS, record.institution):
                    photo = photo_out(record)
            # Objects of institutions the caller may not read are not named to them.
            near = [
                d
                for d in o.possible_duplicates
                if principal.may_on(Action.READ_OBJECTS, d.institution)
            ]
            message = o.message
            if o.possible_duplicates:
                message = duplicate_message(o.source, object_id, near) if near else ""
            out.append(
                UploadOutcome(
                    filename=o.source,
                    outcome=o.outcome.value,
                    message=message,
                    photo=photo,
                    possible_duplicates=[
                        PossibleDuplicateOut(
                            object_id=d.object_id, photo_id=d.photo_id, inliers=d.inliers
                        )
                        for d in near
                    ],
                )
            )
        return out

    outcomes = await run_in_threadpool(work)
    stored = [
        o.photo.id for o in outcomes if o.photo is not None and o.outcome == Outcome.ADDED.value
    ]
    if stored and audit:
        await run_in_threadpool(_audit, rt, principal, "photo_add", object_id, photo_ids=stored)
    return outcomes


def _loader(data: bytes) -> Callable[[], bytes]:
    return lambda: data
