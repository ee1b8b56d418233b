"""Cross-checking auction listings against the objects reported stolen or missing.

Manifest: CSV or JSONL with ``listing_id``, ``image`` (path relative to the manifest) and
optionally ``title``, ``url``, ``seller``, ``price``, ``date``. Each checked listing is committed
as it is done, so an interrupted run loses nothing and a re-run skips what was already checked
(listings whose image could not be read are tried again). The hit report covers every listing
of the manifest, including those checked by earlier runs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from engine.search import decision_threshold, search
from engine.services import Services
from ingest.catalogue_csv import validation_message
from kernel.enums import LOST_STATUSES
from kernel.errors import ArtmatchError, InvalidInput
from models.images import decode_image

__all__ = ["Listing", "ListingRun", "check_listings", "read_manifest", "write_report"]

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
]


class Listing(BaseModel):
    listing_id: str = Field(min_length=1, max_length=300)
    image: str = Field(min_length=1, max_length=1000)
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


def _rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not a UTF-8 text file") from None
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path.name}:{line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InvalidInput(f"{path.name}:{line_no}: expected a JSON object per line")
            yield line_no, row
    else:
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in ("listing_id", "image") if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)}")
        for line_no, row in enumerate(reader, start=2):
            yield line_no, {k: v for k, v in row.items() if k and v not in (None, "")}


def read_manifest(path: Path) -> list[Listing]:
    """Every listing of the manifest; a malformed line fails the whole manifest, naming it."""
    path = Path(path)
    listings: list[Listing] = []
    seen: set[str] = set()
    for line_no, row in _rows(path):
        row = {k: (str(v) if v is not None else None) for k, v in row.items()}
        try:
            listing = Listing.model_validate(row)
        except ValidationError as exc:
            raise InvalidInput(f"{path.name}:{line_no}: {validation_message(exc)}") from None
        if listing.listing_id in seen:
            raise InvalidInput(f"{path.name}:{line_no}: listing_id {listing.listing_id!r} repeated")
        seen.add(listing.listing_id)
        listings.append(listing)
    if not listings:
        raise InvalidInput(f"{path}: the manifest lists no listings")
    return listings


def check_listings(
    services: Services,
    manifest: Path,
    *,
    recheck: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[ListingRun, list[Listing]]:
    listings = read_manifest(manifest)
    base = Path(manifest).parent
    done = (
        set()
        if recheck
        else services.catalogue.checked_listing_ids(item.listing_id for item in listings)
    )
    run = ListingRun(total=len(listings))
    model_version = f"{services.embedder.name} {services.embedder.version}"
    for n, listing in enumerate(listings, start=1):
        if listing.listing_id in done:
            run.skipped += 1
        else:
            _check_one(services, listing, base=base, run=run, model_version=model_version)
        if on_progress:
            on_progress(n, len(listings))
    return run, listings


def _check_one(
    services: Services, listing: Listing, *, base: Path, run: ListingRun, model_version: str
) -> None:
    record: dict[str, object] = {
        "listing_id": listing.listing_id,
        "image": listing.image,
        "title": listing.title,
        "url": listing.url,
        "seller": listing.seller,
        "price": listing.price,
        "listed_on": listing.date,
        "model_version": model_version,
    }
    try:
        data = (base / listing.image).read_bytes()
        image = decode_image(
            data, source=listing.image, max_pixels=services.settings.max_image_pixels
        )
        result = search(services, image, top_k=5, statuses=list(LOST_STATUSES))
    except (ArtmatchError, OSError) as exc:
        message = str(exc) if isinstance(exc, ArtmatchError) else f"{listing.image}: {exc}"
        run.errors.append(f"listing {listing.listing_id}: {message}")
        services.catalogue.record_listing_check(record | {"error": message}, replace=True)
        return
    matches = [
        {
            "object_id": h.object_id,
            "similarity": h.similarity,
            "confidence": h.confidence,
            # The threshold that decided this match, and the quantity it applies to.
            "threshold": result.threshold,
            "threshold_on": result.threshold_on.value,
            "status": h.status.value,
            "institution": h.institution,
            "title": h.title,
            "loss_reference": h.loss_reference,
        }
        for h in result.matches
    ]
    best = result.hits[0] if result.hits else None
    services.catalogue.record_listing_check(
        record
        | {
            "image_sha256": image.sha256,
            "is_hit": bool(matches),
            "best_object_id": best.object_id if best else None,
            # The catalogue's column keeps its name; it holds the best hit's similarity.
            "best_similarity": best.similarity if best else None,
            "matches_json": json.dumps(matches),
        },
        replace=True,
    )
    run.checked += 1
    run.hits += bool(matches)


def write_report(services: Services, listings: list[Listing], out_stem: Path) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.json``: one row per (listing, matching object)."""
    checks = services.catalogue.listing_checks(item.listing_id for item in listings)
    rows = []
    for check in checks:
        for match in check["matches"]:  # type: ignore[attr-defined]
            rows.append(
                {
                    "listing_id": check["listing_id"],
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
                    "listing_title": check["title"],
                    "url": check["url"],
                    "seller": check["seller"],
                    "price": check["price"],
                    "date": check["listed_on"],
                    "image": check["image"],
                }
            )
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path = out_stem.with_name(out_stem.name + ".csv")
    json_path = out_stem.with_name(out_stem.name + ".json")
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    threshold, threshold_on = decision_threshold(services.settings.match)
    errors = [
        {"listing_id": c["listing_id"], "error": c["error"]} for c in checks if c.get("error")
    ]
    summary = {
        "listings": len(listings),
        "checked": len(checks),
        "hits": rows,
        "errors": errors,
        # What this run's searches decide with (each hit carries the one that decided it).
        "threshold": threshold,
        "threshold_on": threshold_on.value,
        "model": f"{services.embedder.name} {services.embedder.version}",
    }
    json_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return csv_path, json_path
