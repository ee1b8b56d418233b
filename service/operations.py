"""What the handlers of the API and of the pages do, once: check the caller may, call the
domain off the event loop, and shape the result. Handlers stay a few lines each."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from starlette.concurrency import run_in_threadpool

from engine import search as matching
from engine.evidence import photo_evidence_png, query_blob_key
from engine.services import Services
from ingest.listings import read_manifest
from ingest.photos import Outcome, PhotoItem, ingest_photos, sync_index
from kernel.enums import JobStatus, ObjectStatus, Role
from kernel.errors import InvalidImage, InvalidInput, NotFound
from kernel.schemas import ObjectCreate, ObjectUpdate, StatusChange
from models.images import decode_image
from service.deps import Principal
from service.errors import Forbidden
from service.runtime import Runtime
from service.schemas import (
    JobPublic,
    ObjectDetail,
    ObjectIn,
    ObjectOut,
    PhotoOut,
    SearchHitOut,
    SearchResponse,
    StatusEventOut,
    UploadOutcome,
)
from storage.catalogue.accounts import JobRecord
from storage.catalogue.browse import PhotoRecord

__all__ = [
    "create_object",
    "delete_object",
    "delete_photo",
    "job_public",
    "object_detail",
    "photo_out",
    "readable_object",
    "run_search",
    "submit_job",
    "upload_photos",
]

API = "/api/v1"


def photo_out(p: PhotoRecord) -> PhotoOut:
    return PhotoOut(
        id=p.id,
        object_id=p.object_id,
        sha256=p.sha256,
        view=p.view,
        width=p.width,
        height=p.height,
        original_name=p.original_name,
        image_url=f"{API}/photos/{p.id}/image",
        thumbnail_url=f"{API}/photos/{p.id}/thumbnail",
        created_at=p.created_at,
    )


def object_url(object_id: str) -> str:
    return f"{API}/objects/{object_id}"


def _check_read(principal: Principal, institution: str) -> None:
    if not principal.may_read(institution):
        # Same answer as an unknown id: a registrar learns nothing of other catalogues.
        raise NotFound("no such object in the catalogues you may read")


def _check_manage(principal: Principal, institution: str) -> None:
    if not principal.may_manage(institution):
        raise Forbidden(
            f"only registrars of {institution!r} may change its objects"
            if principal.role is Role.REGISTRAR
            else f"the role {principal.role.value} may not change catalogues"
        )


def readable_object(rt: Runtime, principal: Principal, object_id: str) -> str:
    """The institution of an object the caller may read (404 otherwise)."""
    institution = rt.queries.object_institution(object_id)
    _check_read(principal, institution)
    return institution


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


def object_out(rt: Runtime, obj: object) -> ObjectOut:
    from kernel.schemas import ObjectPublic

    assert isinstance(obj, ObjectPublic)
    return ObjectOut(**obj.model_dump(), url=object_url(obj.object_id))


def create_object(rt: Runtime, principal: Principal, body: ObjectIn) -> ObjectOut:
    institution = body.institution or principal.account.institution or ""
    _check_manage(principal, institution)
    record = ObjectCreate(**body.model_dump(exclude={"institution"}), institution=institution)
    with rt.write_lock:
        catalogue = rt.catalogue
        try:
            catalogue.get_object(record.object_id)
        except NotFound:
            pass
        else:
            from kernel.errors import Conflict

            raise Conflict(f"object {record.object_id!r} already exists")
        obj, _ = catalogue.upsert_object(record)
        if record.status is not ObjectStatus.IN_COLLECTION:
            obj = catalogue.set_status(record.object_id, StatusChange(status=record.status))
    return object_out(rt, obj)


def update_object(
    rt: Runtime, principal: Principal, object_id: str, body: ObjectUpdate
) -> ObjectOut:
    _check_manage(principal, readable_object(rt, principal, object_id))
    with rt.write_lock:
        obj = rt.queries.update_object(object_id, body.model_dump(exclude_unset=True))
    return object_out(rt, obj)


def change_status(
    rt: Runtime, principal: Principal, object_id: str, change: StatusChange
) -> ObjectOut:
    _check_manage(principal, readable_object(rt, principal, object_id))
    with rt.write_lock:
        obj = rt.catalogue.set_status(object_id, change)
    return object_out(rt, obj)


def _forget_photos(services: Services, photos: Sequence[PhotoRecord]) -> None:
    if photos:
        services.index.remove(np.asarray([p.id for p in photos], dtype=np.int64))
        sync_index(services)
        for p in photos:
            for key in (p.blob_key, p.thumbnail_key):
                if services.blobs.exists(key):
                    services.blobs.delete(key)


def delete_object(rt: Runtime, services: Services, principal: Principal, object_id: str) -> None:
    _check_manage(principal, readable_object(rt, principal, object_id))
    with rt.write_lock:
        _forget_photos(services, rt.queries.delete_object(object_id))


def delete_photo(rt: Runtime, services: Services, principal: Principal, photo_id: int) -> None:
    photo = rt.queries.photo(photo_id)
    _check_read(principal, photo.institution)
    _check_manage(principal, photo.institution)
    with rt.write_lock:
        _forget_photos(services, [rt.queries.delete_photo(photo_id)])


async def upload_photos(
    rt: Runtime,
    services: Services,
    principal: Principal,
    object_id: str,
    files: Sequence[tuple[str, bytes]],
    view: str | None,
) -> list[UploadOutcome]:
    institution = await run_in_threadpool(readable_object, rt, principal, object_id)
    _check_manage(principal, institution)
    obj = await run_in_threadpool(rt.catalogue.get_object, object_id)
    record = ObjectCreate(object_id=obj.object_id, institution=obj.institution, status=obj.status)
    items = [
        PhotoItem(record=record, source=name, load=(lambda d=data: d), view=view)
        for name, data in files
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
                if principal.may_read(record.institution):
                    photo = photo_out(record)
            out.append(
                UploadOutcome(
                    filename=o.source, outcome=o.outcome.value, message=o.message, photo=photo
                )
            )
        return out

    outcomes = await run_in_threadpool(work)
    if all(o.outcome == Outcome.ERROR.value for o in outcomes):
        raise InvalidImage("; ".join(o.message for o in outcomes) or "no photo in the upload")
    return outcomes


async def run_search(
    rt: Runtime,
    services: Services,
    principal: Principal,
    *,
    data: bytes,
    filename: str,
    case_reference: str | None,
    statuses: Sequence[ObjectStatus] | None,
    institutions: Sequence[str] | None,
    top_k: int,
) -> SearchResponse:
    def work() -> SearchResponse:
        image = decode_image(data, source=filename, max_pixels=rt.settings.max_image_pixels)
        result = matching.search(
            services, image, top_k=top_k, statuses=statuses, institutions=institutions
        )
        # The query photo is evidence too: kept (content-addressed) for the evidence pictures.
        key = query_blob_key(image.sha256)
        if not services.blobs.exists(key):
            services.blobs.put(key, data, content_type=f"image/{image.format.lower()}")
        top = result.hits[0] if result.hits else None
        search_id = rt.accounts.log_search(
            account=principal.account,
            case_reference=case_reference,
            query_sha256=result.query_sha256,
            filters={"statuses": statuses or None, "institutions": institutions or None},
            matches=len(result.matches),
            top_object_id=top.object_id if top else None,
            top_score=top.similarity if top else None,
        )
        hits = [
            SearchHitOut(
                **h.model_dump(),
                thumbnail_url=f"{API}/photos/{h.photo_id}/thumbnail",
                image_url=f"{API}/photos/{h.photo_id}/image",
                object_url=object_url(h.object_id),
                evidence_url=f"{API}/searches/{search_id}/evidence/{h.photo_id}.png"
                if h.verified
                else None,
            )
            for h in result.hits
        ]
        return SearchResponse(
            **result.model_dump(exclude={"hits"}),
            hits=hits,
            search_id=search_id,
            case_reference=case_reference,
        )

    return await run_in_threadpool(work)


async def search_evidence(
    rt: Runtime, services: Services, *, search_id: int, photo_id: int
) -> bytes:
    def work() -> bytes:
        logged = rt.accounts.get_search(search_id)
        data = services.blobs.get(query_blob_key(logged.query_sha256))
        query = decode_image(
            data, source=f"search {search_id}", max_pixels=rt.settings.max_image_pixels
        )
        caption = f"search {search_id}" + (
            f", case {logged.case_reference}" if logged.case_reference else ""
        )
        return photo_evidence_png(services, query, photo_id, caption=caption)

    return await run_in_threadpool(work)


# -- batch jobs ----------------------------------------------------------------------------


def job_public(job: JobRecord) -> JobPublic:
    done = job.status is JobStatus.SUCCEEDED
    return JobPublic(
        **{k: getattr(job, k) for k in JobPublic.model_fields if hasattr(job, k)},
        report_csv_url=f"{API}/jobs/{job.id}/report.csv" if done and job.report_csv else None,
        report_json_url=f"{API}/jobs/{job.id}/report.json" if done and job.report_json else None,
    )


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_relpath(root: Path, name: str) -> Path:
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise InvalidInput(f"{name!r}: image paths in an uploaded manifest must be relative")
    return root.joinpath(*rel.parts)


def save_uploaded_manifest(
    rt: Runtime, job_id: str, manifest: tuple[str, bytes], images: Sequence[tuple[str, bytes]]
) -> Path:
    """Keep an uploaded manifest and its images in ``<home>/manifests/<job id>/``."""
    name, data = manifest
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise InvalidInput(f"{name}: a manifest is a .csv or .jsonl file")
    root = rt.manifests_dir / job_id
    root.mkdir(parents=True, exist_ok=True)
    path = root / (_SAFE_NAME.sub("_", Path(name).stem)[:80] + suffix)
    path.write_bytes(data)
    listings = read_manifest(path)
    if images:
        # A browser sends bare file names; place each where the manifest expects it.
        wanted: dict[str, list[str]] = {}
        for listing in listings:
            wanted.setdefault(PurePosixPath(listing.image.replace("\\", "/")).name, []).append(
                listing.image
            )
        for image_name, image_data in images:
            for rel in wanted.get(PurePosixPath(image_name.replace("\\", "/")).name, []):
                target = _safe_relpath(root, rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(image_data)
    return path


def server_manifest(rt: Runtime, manifest_path: str) -> Path:
    path = Path(manifest_path).expanduser().resolve()
    roots = [r.expanduser().resolve() for r in [*rt.web.manifest_roots, rt.manifests_dir]]
    if not any(path.is_relative_to(root) for root in roots):
        raise InvalidInput(
            f"{manifest_path}: not under a directory the service may read "
            f"({', '.join(str(r) for r in roots)}; set ARTMATCH_WEB_MANIFEST_ROOTS)"
        )
    read_manifest(path)
    return path


def submit_job(
    rt: Runtime,
    principal: Principal,
    *,
    manifest_path: str | None,
    upload: tuple[str, bytes] | None,
    images: Sequence[tuple[str, bytes]],
    recheck: bool,
) -> JobPublic:
    rt.require_services()
    job_id = uuid.uuid4().hex
    if upload is not None:
        path = save_uploaded_manifest(rt, job_id, upload, images)
    elif manifest_path:
        path = server_manifest(rt, manifest_path)
    else:
        raise InvalidInput("send a manifest file, or the path of one on the server")
    total = len(read_manifest(path))
    job = rt.accounts.create_job(
        job_id=job_id, account=principal.account, manifest=str(path), recheck=recheck, total=total
    )
    if rt.jobs is not None:
        rt.jobs.submit(job_id, path, recheck=recheck)
    # else: queued in the database for an `artmatch worker` process
    return job_public(job)
