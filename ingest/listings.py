"""Cross-checking auction listings against the objects reported stolen or missing.

Manifest: CSV or JSONL with ``listing_id``, ``image`` (path relative to the manifest) and
optionally ``venue``, ``title``, ``url``, ``seller``, ``price``, ``date``.

A listing photo is read only from inside the manifest's own folder: no absolute path, no
``..``, no symbolic link leading out, only regular files (never a FIFO or a device, which
would hang or never end), at most ``max_photo_bytes``; an error names the listing and the
path as the manifest wrote it, never a server path, and says nothing of what lies there.

A listing's identity is (source, listing_id, sha256 of its photo): the source is its
``venue`` when the manifest gives one, else the manifest itself. Each checked listing is
committed as it is done, so an interrupted run loses nothing and a re-run of the same
manifest skips what was already checked (listings whose photo could not be read or searched
are tried again); another manifest or venue using the same ``listing_id``, or a new photo,
is checked anew. The hit report covers exactly this manifest's listings.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from pydantic import BaseModel, Field, ValidationError

from engine.search import decision_threshold
from engine.services import Services
from ingest.batch.work import (
    ChunkMapper,
    InProcessMapper,
    ListingTask,
    chunked,
    commit_chunk,
    model_version,
)
from ingest.catalogue_csv import csv_error_message, csv_rows, validation_message
from ingest.recheck import ListingDetails
from kernel.errors import InvalidInput
from storage.catalogue.alerts import AlertRecord

__all__ = [
    "MAX_MANIFEST_BYTES",
    "Listing",
    "ListingKey",
    "ListingRun",
    "check_listings",
    "manifest_source",
    "neutralise_cell",
    "read_listing_photo",
    "read_manifest",
    "safe_relative",
    "write_report",
]

log = logging.getLogger(__name__)

#: Largest manifest read (a million listings is ~200 MB of CSV; nobody sends that at once).
MAX_MANIFEST_BYTES = 64 * 1024 * 1024

REPORT_COLUMNS = [
    "listing_id",
    "object_id",
    "similarity",
    "confidence",
    "threshold",
    "threshold_on",
    "status",
    "institution",
    "title_of_object",
    "loss_reference",
    "listing_title",
    "url",
    "seller",
    "price",
    "date",
    "image",
    "venue",
]

#: (source, listing_id, sha256 of the photo, or None when the photo could not be read).
ListingKey = tuple[str, str, str | None]


class Listing(BaseModel):
    listing_id: str = Field(min_length=1, max_length=300)
    image: str = Field(min_length=1, max_length=1000)
    #: The auction house or site; with it, one listing_id means one listing across manifests.
    venue: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=1000)
    url: str | None = Field(default=None, max_length=2000)
    seller: str | None = Field(default=None, max_length=500)
    price: str | None = Field(default=None, max_length=100)
    date: str | None = Field(default=None, max_length=100)


@dataclass
class ListingRun:
    total: int = 0
    skipped: int = 0
    checked: int = 0
    hits: int = 0
    errors: list[str] = field(default_factory=list)
    #: Alerts this run raised (a lost object seen in a listing for the first time), for the
    #: runner to send to webhooks.
    new_alerts: list[AlertRecord] = field(default_factory=list)
    #: The manifest's listings and, for each, the identity its check is stored under.
    listings: list[Listing] = field(default_factory=list)
    keys: list[ListingKey] = field(default_factory=list)


class _Unreadable(Exception):
    """A listing photo that is not a readable regular file inside the manifest folder."""


class _TooLarge(_Unreadable):
    pass


def safe_relative(name: str) -> PurePosixPath | None:
    """``name`` as a relative path with no ``..``, or None when it is absolute or escapes."""
    rel = PurePosixPath(name.replace("\\", "/"))
    if (
        rel.is_absolute()
        or PureWindowsPath(name).drive
        or not rel.parts
        or ".." in rel.parts
        or "\0" in name
    ):
        return None
    return rel


def _read_regular(path: Path, *, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``.

    Checked with stat before opening and again on the open descriptor (opened non-blocking,
    without following a last-moment symbolic link): a FIFO, a device or a directory is
    refused without a read that could block or never end.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _Unreadable
    if st.st_size > max_bytes:
        raise _TooLarge
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Unreadable
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew since the stat
        raise _TooLarge
    return data


def read_listing_photo(base: Path, name: str, *, max_bytes: int) -> bytes:
    """The photo ``name`` of a manifest in ``base``, confined to ``base`` (see module doc).

    Raises `_Unreadable` (or `_TooLarge`) without saying more: whether the path is missing,
    a directory or outside is none of the caller's business.
    """
    rel = safe_relative(name)
    if rel is None:
        raise _Unreadable
    try:
        root = base.resolve(strict=True)
        # resolve() follows symbolic links, so a link leading out is caught below.
        target = root.joinpath(*rel.parts).resolve(strict=True)
        if not target.is_relative_to(root) or target == root:
            raise _Unreadable
        return _read_regular(target, max_bytes=max_bytes)
    except (OSError, RuntimeError, ValueError):
        raise _Unreadable from None


def manifest_source(manifest: Path) -> str:
    """The default source of a manifest's listings: the manifest file itself, by its real
    path, so that the command line and the service share the work on one file."""
    return f"manifest:{Path(manifest).resolve()}"


def _manifest_text(path: Path, *, max_bytes: int) -> str:
    try:
        data = _read_regular(path, max_bytes=max_bytes)
    except _TooLarge:
        raise InvalidInput(
            f"{path.name}: the manifest is larger than {max_bytes:,} bytes; split it"
        ) from None
    except (_Unreadable, OSError):
        raise InvalidInput(f"{path.name}: not a readable manifest file") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name}: not a UTF-8 text file") from None


def _rows(path: Path, *, max_bytes: int) -> Iterator[tuple[int, dict[str, object]]]:
    text = _manifest_text(path, max_bytes=max_bytes)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path.name}:{line_no}: not valid JSON ({exc.msg})") from None
            except RecursionError:
                raise InvalidInput(f"{path.name}:{line_no}: JSON nested too deeply") from None
            if not isinstance(row, dict):
                raise InvalidInput(f"{path.name}:{line_no}: expected a JSON object per line")
            yield line_no, row
    else:
        reader = csv.DictReader(text.splitlines())
        try:
            fieldnames = reader.fieldnames or []
        except csv.Error as exc:
            raise InvalidInput(f"{path.name}:1: {csv_error_message(exc)}") from None
        missing = [c for c in ("listing_id", "image") if c not in fieldnames]
        if missing:
            raise InvalidInput(f"{path.name}: missing column(s) {', '.join(missing)}")
        for line_no, row in csv_rows(reader):
            if isinstance(row, csv.Error):
                raise InvalidInput(f"{path.name}:{line_no}: {csv_error_message(row)}")
            yield line_no, {k: v for k, v in row.items() if k and v not in (None, "")}


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        # A nested value is not a listing field; keep it as its JSON text (then length-checked).
        return json.dumps(value)
    return str(value)


def read_manifest(path: Path, *, max_bytes: int = MAX_MANIFEST_BYTES) -> list[Listing]:
    """Every listing of the manifest; a malformed line fails the whole manifest, naming it
    (by file name and line, never by server path)."""
    path = Path(path)
    listings: list[Listing] = []
    seen: set[tuple[str | None, str]] = set()
    for line_no, raw in _rows(path, max_bytes=max_bytes):
        row = {str(k): _text(v) for k, v in raw.items()}
        try:
            listing = Listing.model_validate(row)
        except ValidationError as exc:
            raise InvalidInput(f"{path.name}:{line_no}: {validation_message(exc)}") from None
        if (listing.venue, listing.listing_id) in seen:
            raise InvalidInput(f"{path.name}:{line_no}: listing_id {listing.listing_id!r} repeated")
        seen.add((listing.venue, listing.listing_id))
        listings.append(listing)
    if not listings:
        raise InvalidInput(f"{path.name}: the manifest lists no listings")
    return listings


def check_listings(
    services: Services,
    manifest: Path,
    *,
    source: str | None = None,
    recheck: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    scheduler: str | None = None,
    mapper: ChunkMapper | None = None,
) -> ListingRun:
    """Check every listing of ``manifest``; ``source`` names the manifest in listing
    identities (default: `manifest_source`; the service passes a stable name for uploads).

    ``scheduler`` (default ``ARTMATCH_BATCH__SCHEDULER``): "none" checks in this process,
    "local" on a Dask cluster of worker processes started for the run, an address on that
    cluster; a run with fewer than ``batch.min_listings`` listings to check stays in this
    process. ``mapper`` replaces all that (tests). Either way this process alone writes.
    """
    listings = read_manifest(manifest)
    default_source = source or manifest_source(manifest)
    sources = [item.venue or default_source for item in listings]
    done = (
        {}
        if recheck
        else services.catalogue.checked_listing_photos(
            (src, item.listing_id) for src, item in zip(sources, listings, strict=True)
        )
    )
    run = ListingRun(total=len(listings), listings=listings)
    errors: list[tuple[int, str]] = []
    progress = [0]

    def advance(n: int) -> None:
        progress[0] += n
        if on_progress and n:
            on_progress(progress[0], run.total)

    tasks = _tasks(
        services, Path(manifest).parent, sources, done, run=run, errors=errors, advance=advance
    )
    batch = services.settings.batch
    scheduler = scheduler or batch.scheduler
    todo = sum(
        (src, item.listing_id) not in done for src, item in zip(sources, listings, strict=True)
    )
    with ExitStack() as stack:
        if mapper is None and (scheduler == "none" or todo < batch.min_listings):
            mapper, chunks = InProcessMapper(services), chunked(tasks, 1)
        else:
            if mapper is None:
                # Here, not at the top: importing distributed takes a second that small runs,
                # the service's start and `artmatch --help` need not pay.
                from ingest.batch.cluster import DaskMapper, open_cluster

                client = stack.enter_context(open_cluster(services.settings, scheduler=scheduler))
                mapper = DaskMapper(client, services.settings)
            chunks = chunked(tasks, batch.chunk_size)
        # Closed before the cluster is: a run stopped early cancels its chunks in flight.
        results = stack.enter_context(closing(mapper.map(chunks)))
        for outcomes in results:
            committed = commit_chunk(services, outcomes)
            run.checked += committed.checked
            run.skipped += committed.skipped
            run.hits += committed.hits
            run.new_alerts += committed.new_alerts
            errors.extend(committed.errors)
            advance(len(outcomes))
    # In manifest order, whatever order the workers finished in.
    run.errors = [message for _, message in sorted(errors)]
    return run


def _tasks(
    services: Services,
    base: Path,
    sources: Sequence[str],
    done: dict[tuple[str, str], set[str]],
    *,
    run: ListingRun,
    errors: list[tuple[int, str]],
    advance: Callable[[int], None],
) -> Iterator[ListingTask]:
    """The listings to check, their photos read as they are needed; listings already checked
    are counted skipped and unreadable photos stored as errors on the way."""
    model = model_version(services)
    max_bytes = services.settings.max_upload_bytes
    for index, (src, listing) in enumerate(zip(sources, run.listings, strict=True)):
        try:
            data: bytes | None = read_listing_photo(base, listing.image, max_bytes=max_bytes)
        except _TooLarge:
            data, reason = None, f"{listing.image!r} is larger than {max_bytes:,} bytes"
        except _Unreadable:
            data = None
            reason = f"{listing.image!r} is not a readable photo file inside the manifest folder"
        if data is None:
            run.keys.append((src, listing.listing_id, None))
            errors.append((index, f"listing {listing.listing_id}: {reason}"))
            services.catalogue.record_listing_check(
                _record(listing, src, model) | {"error": reason, "image_sha256": None}
            )
            advance(1)
            continue
        sha = hashlib.sha256(data).hexdigest()
        run.keys.append((src, listing.listing_id, sha))
        if sha in done.get((src, listing.listing_id), ()):
            run.skipped += 1
            advance(1)
            continue
        record = _record(listing, src, model)
        del record["model_version"]  # the worker's, which did the search
        yield ListingTask(
            index=index,
            details=ListingDetails(
                source=src,
                listing_id=listing.listing_id,
                image_sha256=sha,
                title=listing.title,
                url=listing.url,
                seller=listing.seller,
                price=listing.price,
                listed_on=listing.date,
            ),
            image=listing.image,
            data=data,
            record=record,
        )


def _record(listing: Listing, source: str, model_version: str) -> dict[str, object]:
    return {
        "source": source,
        "listing_id": listing.listing_id,
        "image": listing.image,
        "title": listing.title,
        "url": listing.url,
        "seller": listing.seller,
        "price": listing.price,
        "listed_on": listing.date,
        "model_version": model_version,
    }


#: Cells a spreadsheet would read as a formula (OWASP, "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, with a leading quote so that it
    shows as text; numbers and everything else unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def write_report(services: Services, run: ListingRun, out_stem: Path) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.json``: one row per (listing, matching object) of
    this run's manifest, from the checks stored under its listings' identities."""
    checks = services.catalogue.listing_checks(run.keys)
    rows = []
    errors = []
    found = 0
    for listing, key in zip(run.listings, run.keys, strict=True):
        check = checks.get(key)
        if check is None:
            continue
        found += 1
        if check.get("error"):
            errors.append({"listing_id": listing.listing_id, "error": check["error"]})
        for match in check["matches"]:  # type: ignore[attr-defined]
            rows.append(
                {
                    "listing_id": listing.listing_id,
                    "object_id": match["object_id"],
                    # Checks recorded before the rename carry only "score" (the similarity)
                    # and no record of the threshold that decided them.
                    "similarity": match.get("similarity", match.get("score")),
                    "confidence": match.get("confidence"),
                    "threshold": match.get("threshold"),
                    "threshold_on": match.get("threshold_on"),
                    "status": match["status"],
                    "institution": match["institution"],
                    "title_of_object": match["title"],
                    "loss_reference": match["loss_reference"],
                    # The listing's details as this manifest gives them.
                    "listing_title": listing.title,
                    "url": listing.url,
                    "seller": listing.seller,
                    "price": listing.price,
                    "date": listing.date,
                    "image": listing.image,
                    "venue": listing.venue,
                }
            )
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path = out_stem.with_name(out_stem.name + ".csv")
    json_path = out_stem.with_name(out_stem.name + ".json")
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        # Listing fields come from strangers: a spreadsheet must not run them.
        writer.writerows({k: neutralise_cell(v) for k, v in row.items()} for row in rows)
    threshold, threshold_on = decision_threshold(services.settings.match)
    summary = {
        "listings": len(run.listings),
        "checked": found,
        "hits": rows,
        "errors": errors,
        # What this run's searches decide with (each hit carries the one that decided it).
        "threshold": threshold,
        "threshold_on": threshold_on.value,
        "model": f"{services.embedder.name} {services.embedder.version}",
    }
    json_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return csv_path, json_path
