"""Near-duplicates at ingest: does a new photo show an object catalogued under another id?

A registrar who enters one painting twice (two ids, two photo sessions), or two institutions
that register the same object, must be told: a search would otherwise split its evidence
between two records. The check is cheap: the new photo's nearest photos of other objects by
the global descriptor (the vector index), and only those similar enough, are verified with the
local features stored at ingest. A verified pair is a warning on the ingest outcome; the photo
is stored all the same (two photos of sibling works, or two works in identical frames, verify
too, and only the registrar can tell).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.services import Services
from models.local_features import FEATURES_KEY, LocalFeatures
from models.verification import verify

__all__ = ["CHECK_TOP", "MIN_SIMILARITY", "PossibleDuplicate", "duplicate_message", "find"]

#: Other objects verified per new photo at most (the nearest by similarity).
CHECK_TOP = 3
#: Only candidates at least this similar are verified. Measured on museum-paintings with
#: scripts/measure_near_duplicates.py: 41% of catalogue photos have another object above 0.70
#: (0.96 of the 3 nearest on average in the full catalogue, about half that during an import),
#: 8% above 0.80; the painting catalogued under two ids scores 0.97, and 84% of the phone
#: photos of an object (frame, wall, reflections: harder than a second catalogue photo) reach
#: 0.70 with their object. A lower floor would cost most of an ingest for nothing.
MIN_SIMILARITY = 0.70
# Nearest photos fetched per new photo: its own object's photos come first, so ask for more.
_SEARCH_K = 4 * CHECK_TOP


@dataclass(frozen=True)
class PossibleDuplicate:
    """A stored photo of another object that the new photo verifies against."""

    object_id: str
    institution: str
    photo_id: int
    inliers: int


@dataclass(frozen=True)
class NewPhoto:
    """A photo just stored (and indexed) in this batch."""

    photo_id: int
    object_id: str
    vector: np.ndarray
    features: LocalFeatures | None


def duplicate_message(source: str, object_id: str, found: Sequence[PossibleDuplicate]) -> str:
    return "; ".join(
        f"photo {source} of object {object_id} verifies against object {d.object_id}'s photo "
        f"{d.photo_id} ({d.inliers} matching points): they may be one object"
        for d in found
    )


def find(services: Services, batch: Sequence[NewPhoto]) -> list[list[PossibleDuplicate]]:
    """For each photo of ``batch`` (already in the index), the other objects it verifies
    against. A pair within the batch is reported once, on the later photo."""
    found: list[list[PossibleDuplicate]] = [[] for _ in batch]
    checked = [n for n, p in enumerate(batch) if p.features is not None and len(p.features)]
    if not checked or services.index.size <= 1:
        return found
    scores, ids = services.index.search(
        np.stack([batch[n].vector for n in checked]), min(_SEARCH_K, services.index.size)
    )
    position = {p.photo_id: n for n, p in enumerate(batch)}
    near = {int(i) for i in ids[(ids >= 0) & (scores >= MIN_SIMILARITY)]}
    if not near:
        return found
    refs = services.catalogue.photo_refs(near)
    plans: list[tuple[int, list[int]]] = []
    for n, s_row, i_row in zip(checked, scores, ids, strict=True):
        seen: set[str] = {batch[n].object_id}
        picks: list[int] = []
        for score, pid in zip(s_row, i_row, strict=True):
            ref = refs.get(int(pid))
            if score < MIN_SIMILARITY or ref is None or ref.object_id in seen:
                continue
            if position.get(ref.photo_id, -1) > n:
                continue  # the later photo of the pair reports it
            seen.add(ref.object_id)
            picks.append(ref.photo_id)
            if len(picks) == CHECK_TOP:
                break
        if picks:
            plans.append((n, picks))
    stored = services.catalogue.local_features({p for _, ps in plans for p in ps}, FEATURES_KEY)
    for n, picks in plans:
        features = batch[n].features
        assert features is not None
        for pid in picks:
            data = stored.get(pid)
            if data is None:
                continue
            # No mirrored attempt: a mirrored double entry is rare, and the attempt doubles
            # the cost of every pair that does not verify. Importing museum-paintings on a busy
            # 2-core machine, alternating with the code before this check: 14-15% slower with
            # a mirrored attempt for the nearest candidate, 8-12% without.
            result = verify(features, LocalFeatures.from_bytes(data), try_mirror=False)
            if result.is_match:
                ref = refs[pid]
                found[n].append(
                    PossibleDuplicate(ref.object_id, ref.institution, pid, result.inliers)
                )
    return found
