"""Writing a catalogue (or a selection) as LIDO 1.1 XML, Object ID CSV or JSON.

Every format is written beside a folder ``<OUT stem>-photos/`` holding the objects' photos
(named by their SHA-256), which the file links to by relative path, so that an export imports
again as it is: ``import-lido`` reads the LIDO, ``import-catalogue`` the CSV (its columns are
the ones `ingest.catalogue_csv` reads). The LIDO is checked against ``schemas/`` (a LIDO 1.1
subset, offline) before it is written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy.engine import Engine

from ingest.lido import LIDO_NS
from kernel.enums import ObjectStatus
from kernel.errors import InvalidInput
from kernel.schemas import OBJECT_ID_FIELDS, ObjectPublic
from storage.blobs import BlobStore
from storage.catalogue.browse import CatalogueQueries, PhotoRecord

__all__ = [
    "CSV_COLUMNS",
    "ExportFormat",
    "ExportResult",
    "ExportedObject",
    "export_catalogue",
    "lido_document",
    "lido_schema",
    "select_objects",
    "validate_lido",
]

SCHEMA_DIR = Path(__file__).parent / "schemas"
XML_NS = "http://www.w3.org/XML/1998/namespace"
#: The columns `import-catalogue` reads, in its order.
CSV_COLUMNS = ("image", "object_id", "institution", "status", "view", *OBJECT_ID_FIELDS)
_PAGE = 500


class ExportFormat(StrEnum):
    LIDO = "lido"
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True)
class ExportedObject:
    record: ObjectPublic
    #: (photo, path of its file relative to the exported file)
    photos: list[tuple[PhotoRecord, str]]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    photo_dir: Path
    objects: int
    photos: int


def select_objects(
    engine: Engine,
    *,
    institutions: Sequence[str] = (),
    statuses: Sequence[ObjectStatus] = (),
    object_ids: Sequence[str] = (),
) -> list[ObjectPublic]:
    """The objects to export, sorted by id: those named (each must exist), else those of the
    institutions and statuses given (none given: every object)."""
    queries = CatalogueQueries(engine)
    if object_ids:
        from storage.catalogue import Catalogue

        catalogue = Catalogue(engine)
        found = [catalogue.get_object(oid) for oid in dict.fromkeys(object_ids)]
        return sorted(
            (
                o
                for o in found
                if (not institutions or o.institution in institutions)
                and (not statuses or o.status in statuses)
            ),
            key=lambda o: o.object_id,
        )
    objects: list[ObjectPublic] = []
    while True:
        page, total = queries.list_objects(
            offset=len(objects),
            limit=_PAGE,
            statuses=list(statuses) or None,
            institutions=list(institutions) or None,
        )
        objects += page
        if not page or len(objects) >= total:
            break
    return sorted(objects, key=lambda o: o.object_id)


def _extension(photo: PhotoRecord) -> str:
    fmt = (photo.format or "jpg").lower()
    return {"jpeg": "jpg", "mpo": "jpg", "tiff": "tif"}.get(fmt, fmt)


def _write_photos(
    engine: Engine, blobs: BlobStore, objects: list[ObjectPublic], *, photo_dir: Path
) -> list[ExportedObject]:
    queries = CatalogueQueries(engine)
    photo_dir.mkdir(parents=True, exist_ok=True)
    exported = []
    for obj in objects:
        photos = []
        for photo in queries.photos_of(obj.object_id):
            name = f"{photo.sha256}.{_extension(photo)}"
            target = photo_dir / name
            if not target.exists():
                target.write_bytes(blobs.get(photo.blob_key))
            photos.append((photo, f"{photo_dir.name}/{name}"))
        exported.append(ExportedObject(obj, photos))
    return exported


# -- LIDO ---------------------------------------------------------------------------------


def _el(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> Any:
    el = etree.SubElement(parent, f"{{{LIDO_NS}}}{name}")
    for key, value in attrs.items():
        el.set(f"{{{LIDO_NS}}}{key}", value)
    if text is not None:
        el.text = text
    return el


def _path(parent: etree._Element, names: str, text: str | None = None) -> Any:
    el = parent
    for name in names.split("/"):
        el = _el(el, name)
    el.text = text
    return el


def _lido_record(wrap: etree._Element, item: ExportedObject) -> None:
    obj = item.record
    rec = _el(wrap, "lido")
    _el(rec, "lidoRecID", obj.object_id, source=obj.institution, type="local")
    desc = _el(rec, "descriptiveMetadata")
    desc.set(f"{{{XML_NS}}}lang", "und")
    work_type = _path(desc, "objectClassificationWrap/objectWorkTypeWrap/objectWorkType")
    if obj.object_type:
        # An object without a type keeps an empty objectWorkType (the element is required).
        _el(work_type, "term", obj.object_type)
    ident = _el(desc, "objectIdentificationWrap")
    _path(ident, "titleWrap/titleSet/appellationValue", obj.title or "")
    if obj.inscriptions_markings:
        _path(
            ident,
            "inscriptionsWrap/inscriptions/inscriptionTranscription",
            obj.inscriptions_markings,
        )
    repo = _path(ident, "repositoryWrap/repositorySet")
    repo.set(f"{{{LIDO_NS}}}type", "current")
    _path(repo, "repositoryName/legalBodyName/appellationValue", obj.institution)
    if obj.inventory_number:
        _el(repo, "workID", obj.inventory_number, type="inventory number")
    notes = [
        (None, obj.description),
        ("distinguishing features", obj.distinguishing_features),
    ]
    if any(text for _, text in notes):
        wrap_el = _el(ident, "objectDescriptionWrap")
        for kind, text in notes:
            if text:
                note = _el(wrap_el, "objectDescriptionSet", **({"type": kind} if kind else {}))
                _el(note, "descriptiveNoteValue", text)
    if obj.measurements:
        _path(
            ident,
            "objectMeasurementsWrap/objectMeasurementsSet/displayObjectMeasurements",
            obj.measurements,
        )
    if obj.maker or obj.date_period or obj.materials_techniques:
        event = _path(desc, "eventWrap/eventSet/event")
        _el(_el(event, "eventType"), "term", "Production")
        if obj.maker:
            _el(_el(event, "eventActor"), "displayActorInRole", obj.maker)
        if obj.date_period:
            _el(_el(event, "eventDate"), "displayDate", obj.date_period)
        if obj.materials_techniques:
            _el(_el(event, "eventMaterialsTech"), "displayMaterialsTech", obj.materials_techniques)
    if obj.subject:
        _path(desc, "objectRelationWrap/subjectWrap/subjectSet/displaySubject", obj.subject)
    admin = _el(rec, "administrativeMetadata")
    admin.set(f"{{{XML_NS}}}lang", "und")
    record_wrap = _el(admin, "recordWrap")
    _el(record_wrap, "recordID", obj.object_id, type="local")
    _el(_el(record_wrap, "recordType"), "term", "item")
    _path(record_wrap, "recordSource/legalBodyName/appellationValue", obj.institution)
    if item.photos:
        resources = _el(admin, "resourceWrap")
        for photo, link in item.photos:
            resource = _el(resources, "resourceSet")
            _el(resource, "resourceID", photo.sha256, type="sha256")
            rep = _el(resource, "resourceRepresentation", type="image_master")
            _el(rep, "linkResource", link, formatResource=f"image/{_extension(photo)}")
            if photo.view:
                _el(_el(resource, "resourcePerspective"), "term", photo.view)


def lido_document(items: list[ExportedObject]) -> bytes:
    wrap = etree.Element(f"{{{LIDO_NS}}}lidoWrap", nsmap={"lido": LIDO_NS})
    for item in items:
        _lido_record(wrap, item)
    return bytes(etree.tostring(wrap, xml_declaration=True, encoding="UTF-8", pretty_print=True))


@cache
def lido_schema() -> etree.XMLSchema:
    # Parsed from files beside this module, never from the network.
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "lido-v1.1-subset.xsd"), parser))


def validate_lido(data: bytes) -> list[str]:
    """The schema's complaints about a LIDO document (none: valid)."""
    schema = lido_schema()
    doc = etree.fromstring(data, etree.XMLParser(no_network=True, resolve_entities=False))
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


# -- Object ID CSV and JSON ---------------------------------------------------------------


def _csv(items: list[ExportedObject]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in items:
        fields = item.record.model_dump(mode="json")
        base = {c: fields.get(c) or "" for c in CSV_COLUMNS if c not in ("image", "view")}
        # An object without photos still gets a row (import-catalogue reports it as a row
        # without an image), so that no record is lost silently.
        if not item.photos:
            writer.writerow({**base, "image": "", "view": ""})
        for photo, link in item.photos:
            writer.writerow({**base, "image": link, "view": photo.view or ""})
    return buffer.getvalue().encode("utf-8")


def _json(items: list[ExportedObject]) -> bytes:
    objects = []
    for item in items:
        record = item.record.model_dump(mode="json", exclude={"photo_count"})
        record["photos"] = [
            {"image": link, "view": photo.view, "sha256": photo.sha256}
            for photo, link in item.photos
        ]
        objects.append(record)
    document = {"format": "artmatch-object-id", "version": 1, "objects": objects}
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def export_catalogue(
    *,
    engine: Engine,
    blobs: BlobStore,
    objects: list[ObjectPublic],
    out: Path,
    fmt: ExportFormat,
) -> ExportResult:
    """Write ``objects`` to ``out`` in ``fmt`` with their photos in ``<out stem>-photos/``."""
    out = Path(out)
    if out.is_dir():
        raise InvalidInput(f"{out}: is a directory; name the file to write")
    if not out.parent.is_dir():
        raise InvalidInput(f"{out.parent}: no such directory")
    photo_dir = out.with_name(f"{out.stem}-photos")
    try:
        items = _write_photos(engine, blobs, objects, photo_dir=photo_dir)
        if fmt is ExportFormat.LIDO:
            data = lido_document(items)
            problems = validate_lido(data)
            if problems:
                # A bug of ours, never the user's: refuse to hand out an invalid file.
                raise InvalidInput(f"exported LIDO is not valid: {problems[0]}")
        elif fmt is ExportFormat.CSV:
            data = _csv(items)
        else:
            data = _json(items)
        out.write_bytes(data)
    except PermissionError as exc:
        raise InvalidInput(f"{exc.filename or out}: not writable") from None
    except OSError as exc:
        raise InvalidInput(f"{exc.filename or out}: cannot write ({exc.strerror or exc})") from None
    return ExportResult(
        path=out,
        photo_dir=photo_dir,
        objects=len(items),
        photos=sum(len(i.photos) for i in items),
    )
