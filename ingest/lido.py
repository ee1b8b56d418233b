"""Reading LIDO 1.1 XML: each ``lido:lido`` record becomes the `PhotoItem`s of one object.

LIDO is what collection systems export (often over OAI-PMH, `ingest.oaipmh`). A record maps
to the Object ID record of `kernel.schemas.ObjectCreate`:

- object id: the first ``lidoRecID``, else the repository's ``workID`` (a ``/``, common in
  LIDO ids and not allowed in artmatch's, becomes ``:``);
- object type, title, subject, measurements, inscriptions: their LIDO wraps;
- maker, date or period, materials and techniques: the production event (else the first
  event that has them);
- description and distinguishing features: ``objectDescriptionSet`` (the latter typed
  ``distinguishing features``); inventory number: ``workID``;
- institution: the repository's legal body, else the record source, else the caller's;
- photos: one per ``resourceSet`` (its master representation when there are several),
  a file relative to the LIDO file or a URL on a host the operator allows (`UrlFetcher`).

A bad record (no id, no usable photo, unreadable XML) is a `RecordError` naming it; the others
go on. Objects are created only together with their first stored photo
(`ingest.photos.ingest_photos`), so a record whose photos all fail leaves nothing behind.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import ValidationError

from ingest.catalogue_csv import validation_message
from ingest.photos import PhotoItem
from kernel.errors import InvalidInput
from kernel.schemas import ObjectBase, ObjectCreate
from kernel.settings import ExchangeSettings

__all__ = [
    "LIDO_NS",
    "LidoFile",
    "RecordError",
    "UrlFetcher",
    "lido_files",
    "parse_record",
    "read_lido",
    "read_lido_file",
    "split_records",
]

LIDO_NS = "http://www.lido-schema.org"
NS = {"lido": LIDO_NS}
_LIDO = f"{{{LIDO_NS}}}lido"
#: Event types (LIDO terminology URIs end in these ids; labels in several languages) that
#: name the making of the object.
_PRODUCTION = re.compile(
    r"production|creation|herstellung|cr[ée]ation|produzione|fabrication|lido00007|lido00012",
    re.IGNORECASE,
)
#: A parser that never resolves entities or fetches DTDs: records come from other systems.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@dataclass(frozen=True)
class RecordError:
    """A record that was skipped, and why (``message`` names the record)."""

    record: str
    message: str


@dataclass
class LidoFile:
    path: Path
    rows: list[PhotoItem | RecordError]


class UrlFetcher:
    """Downloads image URLs, but only from the hosts the operator allows
    (``ARTMATCH_EXCHANGE__IMAGE_HOSTS``), size-capped and time-limited; redirects must stay
    on allowed hosts too."""

    def __init__(self, *, hosts: list[str], timeout_s: float, max_bytes: int) -> None:
        self.hosts = {h.strip().lower() for h in hosts if h.strip()}
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: ExchangeSettings, *, max_bytes: int) -> UrlFetcher:
        return cls(hosts=settings.image_hosts, timeout_s=settings.timeout_s, max_bytes=max_bytes)

    def allows(self, url: str) -> bool:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        host = parts.hostname.lower()
        return host in self.hosts or (
            parts.port is not None and f"{host}:{parts.port}" in self.hosts
        )

    def fetch(self, url: str) -> bytes:
        """The body of ``url``; `InvalidInput` for a host not allowed, OSError for a failed
        download (both reported by the ingest as an error of that photo)."""
        return fetch_url(url, allows=self.allows, timeout_s=self.timeout_s, limit=self.max_bytes)


def fetch_url(url: str, *, allows: Callable[[str], bool], timeout_s: float, limit: int) -> bytes:
    """GET ``url`` (and redirects that ``allows``) and read at most ``limit`` bytes."""
    if not allows(url):
        raise InvalidInput(f"{url}: host not allowed (ARTMATCH_EXCHANGE__IMAGE_HOSTS)")

    class _Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
            # A server must not bounce us to a host the operator did not allow.
            if not allows(newurl):
                raise OSError(f"redirect to a host not allowed: {newurl}")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(_Redirects)
    request = urllib.request.Request(url, headers={"User-Agent": "artmatch"})
    try:
        with opener.open(request, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise OSError(f"larger than {limit:,} bytes")
            data: bytes = response.read(limit + 1)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise OSError(f"download failed ({reason})") from None
    if len(data) > limit:
        raise OSError(f"larger than {limit:,} bytes")
    return data


def lido_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.xml`` files of a directory (sorted, not recursive)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    if not path.exists():
        raise InvalidInput(f"{path}: no such file or directory")
    if not path.is_file():
        raise InvalidInput(f"{path}: not a regular file")
    return [path]


def split_records(data: bytes, *, source: str) -> Iterator[etree._Element | RecordError]:
    """The ``lido:lido`` elements of a document; if the document is not well-formed, each
    record is parsed on its own so that one broken record spoils only itself."""
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError:
        yield from _split_broken(data, source=source)
        return
    if root.tag == _LIDO:
        yield root
        return
    found = root.iter(_LIDO)
    first = next(found, None)
    if first is None:
        yield RecordError(source, f"{source}: no LIDO record (lido:lido) in the document")
        return
    yield first
    yield from found


_RECORD = re.compile(rb"<(?P<p>[\w.-]+:)?lido[\s>].*?</(?P=p)?lido\s*>", re.DOTALL)
_NS_DECL = re.compile(rb"""xmlns(?::[\w.-]+)?\s*=\s*("[^"]*"|'[^']*')""")
_REC_ID = re.compile(rb"<(?:[\w.-]+:)?lidoRecID[^>]*>([^<]{1,200})<")


def _split_broken(data: bytes, *, source: str) -> Iterator[etree._Element | RecordError]:
    matches = list(_RECORD.finditer(data))
    if not matches:
        yield RecordError(source, f"{source}: not well-formed XML and no LIDO record found")
        return
    # The namespaces the wrapper declared, so that each record parses on its own.
    head = data[: matches[0].start()]
    declarations = b" ".join(dict.fromkeys(m.group(0) for m in _NS_DECL.finditer(head)))
    for number, match in enumerate(matches, 1):
        chunk = match.group(0)
        try:
            wrapper = etree.fromstring(
                b"<wrap " + declarations + b">" + chunk + b"</wrap>", _PARSER
            )
        except etree.XMLSyntaxError as exc:
            found = _REC_ID.search(chunk)
            name = found.group(1).decode("utf-8", "replace").strip() if found else f"#{number}"
            yield RecordError(name, f"{source} record {name}: not well-formed XML ({exc.msg})")
            continue
        yield from wrapper.iter(_LIDO)


def _texts(node: etree._Element, path: str) -> list[str]:
    values = []
    for el in node.xpath(path, namespaces=NS):
        text = " ".join("".join(el.itertext()).split()) if isinstance(el, etree._Element) else ""
        if text and text not in values:
            values.append(text)
    return values


def _field(node: etree._Element, *paths: str, limit: int) -> str | None:
    """The distinct values under ``paths`` joined with "; ", cut to the field's length (a
    long description is kept in part rather than losing the whole record)."""
    values: list[str] = []
    for path in paths:
        values += [v for v in _texts(node, path) if v not in values]
    if not values:
        return None
    text = "; ".join(values)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _limit(name: str) -> int:
    for meta in ObjectBase.model_fields[name].metadata:
        if hasattr(meta, "max_length"):
            return int(meta.max_length)
    return 500


def _object_id(rec: etree._Element) -> str | None:
    for path in ("lido:lidoRecID", ".//lido:repositorySet/lido:workID"):
        for value in _texts(rec, path):
            return value.replace("/", ":")
    return None


def _event(rec: etree._Element) -> etree._Element | None:
    events = rec.xpath(".//lido:eventSet/lido:event", namespaces=NS)
    for event in events:
        if _PRODUCTION.search(" ".join(event.xpath("lido:eventType//text()", namespaces=NS))):
            return event  # type: ignore[no-any-return]
    for event in events:
        if event.xpath("lido:eventActor|lido:eventDate|lido:eventMaterialsTech", namespaces=NS):
            return event  # type: ignore[no-any-return]
    return None


def record_fields(rec: etree._Element) -> dict[str, Any]:
    """The Object ID fields of one record (those it has)."""
    ident = "lido:descriptiveMetadata/lido:objectIdentificationWrap"
    description = f"{ident}/lido:objectDescriptionWrap/lido:objectDescriptionSet"
    fields: dict[str, str | None] = {
        "object_type": _field(
            rec,
            ".//lido:objectWorkTypeWrap/lido:objectWorkType/lido:term",
            ".//lido:classificationWrap/lido:classification/lido:term",
            limit=_limit("object_type"),
        ),
        "title": _field(
            rec,
            f"{ident}/lido:titleWrap/lido:titleSet[1]/lido:appellationValue[1]",
            limit=_limit("title"),
        ),
        "inscriptions_markings": _field(
            rec,
            f"{ident}/lido:inscriptionsWrap/lido:inscriptions/lido:inscriptionTranscription",
            limit=_limit("inscriptions_markings"),
        ),
        "measurements": _field(
            rec,
            f"{ident}/lido:objectMeasurementsWrap/lido:objectMeasurementsSet"
            "/lido:displayObjectMeasurements",
            limit=_limit("measurements"),
        ),
        "distinguishing_features": _field(
            rec,
            f"{description}[contains(@lido:type, 'distinguishing')]/lido:descriptiveNoteValue",
            limit=_limit("distinguishing_features"),
        ),
        "description": _field(
            rec,
            f"{description}[not(contains(@lido:type, 'distinguishing'))]/lido:descriptiveNoteValue",
            limit=_limit("description"),
        ),
        "subject": _field(
            rec,
            ".//lido:subjectWrap/lido:subjectSet/lido:displaySubject",
            ".//lido:subjectWrap/lido:subjectSet/lido:subject/lido:subjectConcept/lido:term",
            limit=_limit("subject"),
        ),
        "inventory_number": _field(
            rec, f"{ident}/lido:repositoryWrap/lido:repositorySet/lido:workID", limit=200
        ),
    }
    event = _event(rec)
    if event is not None:
        fields["maker"] = _field(
            event,
            "lido:eventActor/lido:displayActorInRole",
            "lido:eventActor/lido:actorInRole/lido:actor/lido:nameActorSet/lido:appellationValue",
            limit=_limit("maker"),
        )
        fields["date_period"] = _field(
            event,
            "lido:eventDate/lido:displayDate",
            "lido:periodName/lido:term",
            limit=_limit("date_period"),
        )
        fields["materials_techniques"] = _field(
            event,
            "lido:eventMaterialsTech/lido:displayMaterialsTech",
            "lido:eventMaterialsTech/lido:materialsTech/lido:termMaterialsTech/lido:term",
            limit=_limit("materials_techniques"),
        )
    institution = _field(
        rec,
        f"{ident}/lido:repositoryWrap/lido:repositorySet/lido:repositoryName"
        "/lido:legalBodyName/lido:appellationValue",
        limit=200,
    ) or _field(
        rec,
        ".//lido:recordWrap/lido:recordSource/lido:legalBodyName/lido:appellationValue",
        limit=200,
    )
    if institution:
        # Several repositories (former and current): the first is the current one in practice.
        fields["institution"] = institution.split("; ")[0]
    return {k: v for k, v in fields.items() if v}


#: Representation types, best first: a master image beats a display copy beats a thumbnail.
def _rank(kind: str) -> int:
    kind = kind.lower()
    if "master" in kind or "lido00464" in kind or "provided" in kind:
        return 0
    if "thumb" in kind or "lido00465" in kind:
        return 2
    return 1


def _links(rec: etree._Element) -> list[tuple[str, str | None]]:
    """(link, view) of each resourceSet's best representation."""
    links = []
    for resource in rec.xpath(".//lido:resourceWrap/lido:resourceSet", namespaces=NS):
        reps = []
        for rep in resource.xpath("lido:resourceRepresentation", namespaces=NS):
            link = _texts(rep, "lido:linkResource")
            if link:
                reps.append((_rank(rep.get(f"{{{LIDO_NS}}}type", "")), link[0]))
        if not reps:
            continue
        view = _field(
            resource,
            "lido:resourcePerspective/lido:term",
            "lido:resourceType/lido:term",
            limit=100,
        )
        links.append((min(reps)[1], view))
    return links


def _local_file(base: Path, link: str) -> Path | None:
    """``link`` as a regular file inside ``base`` (no absolute path, no ``..`` out), or None."""
    if link.startswith("file:"):
        link = urllib.parse.unquote(urllib.parse.urlsplit(link).path)
    relative = Path(link)
    if relative.is_absolute():
        return None
    root = base.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def parse_record(
    rec: etree._Element,
    *,
    source: str,
    base: Path | None,
    fetcher: UrlFetcher,
    institution: str,
) -> list[PhotoItem] | RecordError:
    """One record's photos; ``base`` is the LIDO file's folder (None for harvested records,
    which may name URLs only: a remote server must not make us read local files)."""
    object_id = _object_id(rec)
    if not object_id:
        return RecordError(source, f"{source}: record without lidoRecID or workID")
    name = f"{source} record {object_id}"
    fields = record_fields(rec)
    fields.setdefault("institution", institution)
    try:
        record = ObjectCreate.model_validate({"object_id": object_id, **fields})
    except ValidationError as exc:
        return RecordError(object_id, f"{name}: {validation_message(exc)}")
    items: list[PhotoItem] = []
    refused: list[str] = []
    for link, view in _links(rec):
        if urllib.parse.urlsplit(link).scheme in ("http", "https"):
            if not fetcher.allows(link):
                refused.append(f"{link} (host not allowed)")
                continue
            load = partial(fetcher.fetch, link)
        else:
            path = _local_file(base, link) if base is not None else None
            if path is None:
                refused.append(f"{link} (not a file beside the LIDO file)")
                continue
            load = partial(path.read_bytes)
        items.append(PhotoItem(record=record, source=f"{name} ({link})", load=load, view=view))
    if not items:
        why = f": {'; '.join(refused)}" if refused else " (no resourceSet/linkResource)"
        return RecordError(object_id, f"{name}: no usable image{why}")
    return items


def read_lido(
    data: bytes,
    *,
    source: str,
    base: Path | None,
    fetcher: UrlFetcher,
    institution: str = "default",
) -> list[PhotoItem | RecordError]:
    """Every record of one LIDO document, as photos to ingest or errors."""
    rows: list[PhotoItem | RecordError] = []
    seen: set[str] = set()
    for rec in split_records(data, source=source):
        if isinstance(rec, RecordError):
            rows.append(rec)
            continue
        parsed = parse_record(
            rec, source=source, base=base, fetcher=fetcher, institution=institution
        )
        if isinstance(parsed, RecordError):
            rows.append(parsed)
            continue
        oid = parsed[0].record.object_id
        if oid in seen:
            # Two records of one id would merge their fields silently; the first one wins.
            rows.append(RecordError(oid, f"{source} record {oid}: repeated in the file"))
            continue
        seen.add(oid)
        rows.extend(parsed)
    return rows


def read_lido_file(path: Path, *, fetcher: UrlFetcher, institution: str = "default") -> LidoFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror or exc})") from None
    rows = read_lido(
        data, source=path.name, base=path.parent, fetcher=fetcher, institution=institution
    )
    return LidoFile(path=path, rows=rows)
