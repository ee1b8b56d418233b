"""Adding catalogue photos: decode -> deduplicate -> thumbnail -> embed -> store -> index.

Order of writes, so that a crash loses nothing and leaves nothing half-written: blobs first
(content-addressed, so rewriting is harmless and an orphan is only wasted space), then the
catalogue row with its vector in one transaction, then the in-memory index, saved at the end of
each batch together with the fingerprint of the catalogue it reflects. The descriptor index takes
the run's photos at its end (`_HeldFeatures`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, replace
from enum import StrEnum
from itertools import chain, islice

import numpy as np

from engine.services import Services, rebuild_descriptors, refresh_descriptors
from ingest import duplicates
from ingest.duplicates import PossibleDuplicate
from ingest.prepare import PhotoLimits, PhotoPreparer, Prepared, Refused, portable_embedder
from kernel.errors import ArtmatchError, Conflict
from kernel.schemas import ObjectCreate
from kernel.threads import faiss_threads
from models.images import DecodedImage, make_thumbnail
from models.local_features import (
    FEATURES_KEY,
    LocalFeatures,
    extract_local_features,
    matching_descriptors,
)
from storage.catalogue import NewPhoto, PhotoRef

__all__ = ["IngestOutcome", "Outcome", "PhotoItem", "blob_keys", "ingest_photos", "sync_index"]

log = logging.getLogger(__name__)

#: Descriptors of a run's photos held in memory for the end of the run (`_HeldFeatures`):
#: ~136 MB of keypoints and uint8 descriptors, ~1,350 museum photos. Past it they go into
#: the index at once.
HELD_DESCRIPTORS_MAX = 1_000_000


@dataclass(frozen=True)
class PhotoItem:
    """One photo to add: its bytes (or a loader), the object it shows, where it came from."""

    record: ObjectCreate
    source: str
    load: Callable[[], bytes]
    view: str | None = None


class Outcome(StrEnum):
    ADDED = "added"
    DUPLICATE = "duplicate"
    ERROR = "error"


@dataclass(frozen=True)
class IngestOutcome:
    source: str
    outcome: Outcome
    message: str = ""
    object_id: str | None = None
    photo_id: int | None = None
    #: Other objects an added photo verifies against: they may be one object (a warning,
    #: described in ``message``; the photo is stored).
    possible_duplicates: tuple[PossibleDuplicate, ...] = ()


def blob_keys(sha256: str) -> tuple[str, str]:
    """(photo key, thumbnail key) of a content address."""
    return f"photos/{sha256[:2]}/{sha256}", f"thumbnails/{sha256[:2]}/{sha256}.jpg"


def _batches(items: Iterable[PhotoItem], size: int) -> Iterator[list[PhotoItem]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def sync_index(services: Services) -> None:
    """Save the index with the fingerprint of the catalogue it now reflects (caught up first
    with what other processes changed: `Services.save_index`)."""
    services.save_index()


def ingest_photos(
    services: Services,
    items: Iterable[PhotoItem],
    *,
    on_outcome: Callable[[IngestOutcome], None] | None = None,
) -> list[IngestOutcome]:
    """Add every item it can; bad ones are reported in the outcomes, good ones are kept.

    Decoding, thumbnails, local features and, where the embedder can travel, the CNN run in
    worker processes (`ingest.prepare`), one batch ahead of the writes, which stay here and
    in input order.
    """
    outcomes: list[IngestOutcome] = []

    def report(outcome: IngestOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    settings = services.settings
    size = settings.embedder.batch_size
    batches = _batches(items, size)
    first = next(batches, [])
    # An upload of a few photos is done before a pool of processes would have started.
    workers = settings.ingest.workers if len(first) == size else 1
    embedder = portable_embedder(services.embedder)
    held = _HeldFeatures(services)
    with (
        PhotoPreparer(workers=workers, limits=_limits(services), embedder=embedder) as preparer,
        # The workers have the cores: this process's index work runs on one thread.
        faiss_threads(1) if preparer.workers > 1 else nullcontext(),
    ):
        for batch in _ahead(preparer, chain([first], batches)):
            _ingest_batch(services, preparer, batch, report, held)
    # A run that grew the descriptor index far past its training retrains it once, here.
    held.finish()
    return outcomes


class _HeldFeatures:
    """The local features of the photos a run stored, kept out of the descriptor index
    until the run ends. Then they are added, unless adding them is sure to leave the index
    outgrown (`DescriptorIndex.outgrown_after`; a new catalogue's first import of more than
    a few dozen photos): then the index is rebuilt at once, with these features from memory,
    into the very index a rebuild from the stored features makes. Adding them first had
    indexed every descriptor twice and read every new photo's features back from the blob
    store.

    A run that stops half-way loses nothing: the next catch-up with the catalogue
    (`Services.refresh`, or `Services.close` when it saves) adds the photos from the stored
    features.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self.features: dict[int, LocalFeatures] = {}
        self.count = 0

    def hold(self, photo_id: int, features: LocalFeatures) -> None:
        self.features[photo_id] = features
        self.count += len(features)
        if self.count > HELD_DESCRIPTORS_MAX:
            self._add_all()

    def finish(self) -> None:
        counts = [len(f) for f in self.features.values()]
        if counts and self.services.descriptors.outgrown_after(counts):
            rebuild_descriptors(self.services, held=self.features)
            self.features, self.count = {}, 0
        else:
            self._add_all()
            refresh_descriptors(self.services)

    def _add_all(self) -> None:
        # In photo order, as they were stored: the index is the one adding each at once made.
        for photo_id, features in self.features.items():
            self.services.descriptors.add(photo_id, matching_descriptors(features))
        self.features, self.count = {}, 0


def _limits(services: Services) -> PhotoLimits:
    settings = services.settings
    return PhotoLimits(
        max_pixels=settings.max_image_pixels,
        max_bytes=settings.max_decode_bytes,
        max_concurrent_decodes=settings.max_concurrent_decodes,
        thumbnail_px=settings.storage.thumbnail_px,
        features=settings.match.verify,
        keep_freed_mb=settings.keep_freed_mb,
    )


@dataclass(frozen=True)
class _Submitted:
    item: PhotoItem
    data: bytes = b""
    future: Future[Prepared | Refused] | None = None
    #: Why its bytes could not be read (then there is no future).
    error: IngestOutcome | None = None


def _ahead(
    preparer: PhotoPreparer, batches: Iterable[list[PhotoItem]]
) -> Iterator[list[_Submitted]]:
    """Each batch with its preparation under way; the next batch is handed to the workers
    before this one is given out, so they work while the CNN and the writes run."""
    submitted = (_submit(preparer, batch) for batch in batches)
    current = next(submitted, None)
    for following in submitted:
        yield current or []
        current = following
    if current:
        yield current


def _submit(preparer: PhotoPreparer, batch: list[PhotoItem]) -> list[_Submitted]:
    entries = []
    for item in batch:
        oid = item.record.object_id
        try:
            data = item.load()
        except ArtmatchError as exc:
            error = IngestOutcome(item.source, Outcome.ERROR, str(exc), oid)
            entries.append(_Submitted(item, error=error))
            continue
        except OSError as exc:
            message = f"{item.source}: cannot read file ({exc.strerror or exc})"
            entries.append(
                _Submitted(item, error=IngestOutcome(item.source, Outcome.ERROR, message, oid))
            )
            continue
        except Exception:
            entries.append(_Submitted(item, error=_failed(item, "could not be decoded")))
            continue
        entries.append(_Submitted(item, data, preparer.submit(data, source=item.source)))
    return entries


def _ingest_batch(
    services: Services,
    preparer: PhotoPreparer,
    batch: list[_Submitted],
    report: Callable[[IngestOutcome], None],
    held: _HeldFeatures,
) -> None:
    decoded: list[tuple[PhotoItem, Prepared, bytes]] = []
    seen: dict[str, ObjectCreate] = {}
    for entry in batch:
        item = entry.item
        if entry.future is None:
            if entry.error is not None:
                report(entry.error)
            continue
        prepared = preparer.result(entry.future, entry.data, source=item.source)
        if isinstance(prepared, Refused):
            if prepared.trace is not None:
                log.error("%s could not be decoded\n%s", item.source, prepared.trace)
                report(_failed(item, "could not be decoded", logged=True))
            else:
                report(
                    IngestOutcome(
                        item.source, Outcome.ERROR, prepared.message, item.record.object_id
                    )
                )
            continue
        sha = prepared.sha256
        existing = services.catalogue.photo_by_sha(sha)
        if existing is not None or sha in seen:
            report(_duplicate(item, existing, seen.get(sha)))
            continue
        seen[sha] = item.record
        decoded.append((item, prepared, entry.data))
    if not decoded:
        return
    vectors, decoded = _embed(services, decoded, report)
    if not decoded:
        return
    added_ids, added_vecs = [], []
    stored: list[tuple[IngestOutcome, duplicates.NewPhoto]] = []
    for (item, prepared, data), vector in zip(decoded, vectors, strict=True):
        try:
            ref, features = _store(services, item, prepared, data, vector)
        except ArtmatchError as exc:
            message = exc.message if isinstance(exc, Conflict) else str(exc)
            message = f"{item.source}: {message}"
            report(IngestOutcome(item.source, Outcome.ERROR, message, item.record.object_id))
            continue
        except Exception:
            report(_failed(item, "could not be stored"))
            continue
        if features is not None:
            held.hold(ref, features)
        added_ids.append(ref)
        added_vecs.append(vector)
        outcome = IngestOutcome(item.source, Outcome.ADDED, "", item.record.object_id, ref)
        stored.append((outcome, duplicates.NewPhoto(ref, item.record.object_id, vector, features)))
    if added_ids:
        services.index.add(np.asarray(added_ids, dtype=np.int64), np.stack(added_vecs))
        sync_index(services)
    # Reported once the batch is indexed, so that photos of one batch are checked
    # against each other too.
    found = duplicates.find(services, [photo for _, photo in stored])
    for (outcome, photo), near in zip(stored, found, strict=True):
        if near:
            message = duplicates.duplicate_message(outcome.source, photo.object_id, near)
            outcome = replace(outcome, message=message, possible_duplicates=tuple(near))
        report(outcome)


def _failed(item: PhotoItem, what: str, *, logged: bool = False) -> IngestOutcome:
    # An error no check foresaw: the photo is refused, the rest of the batch goes on, and the
    # traceback goes to the log rather than to the user.
    if not logged:
        log.exception("%s %s", item.source, what)
    message = f"{item.source}: {what} (an internal error; the other photos are not affected)"
    return IngestOutcome(item.source, Outcome.ERROR, message, item.record.object_id)


def _duplicate(
    item: PhotoItem, existing: PhotoRef | None, earlier: ObjectCreate | None
) -> IngestOutcome:
    """The outcome of a photo already stored (or sent twice in one batch). Another
    institution's object is not named: registrars see only their own catalogue."""
    owner = existing.object_id if existing else earlier.object_id if earlier else None
    institution = existing.institution if existing else earlier.institution if earlier else None
    if institution == item.record.institution:
        where = f"for object {owner}"
    else:
        where, owner = "in the catalogue of another institution", None
    return IngestOutcome(
        item.source,
        Outcome.DUPLICATE,
        f"{item.source}: same bytes as a photo already stored {where}",
        owner,
        existing.photo_id if existing else None,
    )


def _embed(
    services: Services,
    decoded: list[tuple[PhotoItem, Prepared, bytes]],
    report: Callable[[IngestOutcome], None],
) -> tuple[list[np.ndarray], list[tuple[PhotoItem, Prepared, bytes]]]:
    """Vectors of the decoded photos (computed here for those a worker did not embed); if
    that fails, one photo at a time, so that one photo the model cannot take sinks only
    itself."""
    vectors = [prep.vector for _, prep, _ in decoded]
    todo = [n for n, vector in enumerate(vectors) if vector is None]
    try:
        if todo:
            images = [_picture(decoded[n][1]).image for n in todo]
            for n, vector in zip(todo, services.embedder.embed(images), strict=True):
                vectors[n] = vector
        return [v for v in vectors if v is not None], decoded
    except Exception:
        if len(decoded) == 1:
            report(_failed(decoded[0][0], "could not be embedded"))
            return [], []
    each: list[np.ndarray] = []
    kept: list[tuple[PhotoItem, Prepared, bytes]] = []
    for entry in decoded:
        more, ok = _embed(services, [entry], report)
        each += more
        kept += ok
    return each, kept


def _picture(prepared: Prepared) -> DecodedImage:
    # A worker keeps the picture in its result whenever something is left to compute here.
    assert prepared.image is not None, "the picture of a photo with work left"
    return prepared.image


def _store(
    services: Services, item: PhotoItem, prepared: Prepared, data: bytes, vector: np.ndarray
) -> tuple[int, LocalFeatures | None]:
    photo_key, thumb_key = blob_keys(prepared.sha256)
    if not services.blobs.exists(photo_key):
        services.blobs.put(photo_key, data, content_type=f"image/{prepared.format.lower()}")
    if not services.blobs.exists(thumb_key):
        thumb = prepared.thumbnail or make_thumbnail(
            _picture(prepared).image, max_side=services.settings.storage.thumbnail_px
        )
        services.blobs.put(thumb_key, thumb, content_type="image/jpeg")
    width, height = prepared.original_size
    local = features = None
    if services.settings.match.verify:
        features = prepared.features
        blob = prepared.features_blob
        if features is None or blob is None:
            features = extract_local_features(_picture(prepared).to_array())
            blob = features.to_bytes()
        local = (FEATURES_KEY, blob)
    ref = services.catalogue.add_photo(
        record=item.record,
        photo=NewPhoto(
            sha256=prepared.sha256,
            blob_key=photo_key,
            thumbnail_key=thumb_key,
            width=width,
            height=height,
            format=prepared.format,
            view=item.view,
            original_name=item.source[-500:],
        ),
        model=services.embedder.name,
        model_version=services.embedder.version,
        vector=vector,
        local_features=local,
    )
    return ref.photo_id, features
