"""Local-descriptor retrieval: vote and verify, beside the CNN's candidates.

Every query descriptor looks up its nearest catalogue descriptors in the descriptor index (all
catalogue photos' stored RootSIFT). A neighbour counts as a vote for its photo when it is
clearly nearer than the nearest descriptor of any *other* photo (Lowe's ratio test across
photos, so repeated texture within one photo still votes). The most-voted photos are verified
by fitting a homography to their voted correspondences; after a verified fit, the remaining
correspondences are fitted again to catch a second copy of the same object.

This finds objects the CNN never ranks: a small, tilted painting in a cluttered seizure photo
has too little weight in the whole photo's global descriptor, but its keypoints vote all the
same. The approach follows Pastec's ORB searcher and COLMAP's vote-and-verify.

Inputs: the query's local features, the descriptor index, the stored features (for the
catalogue photos' keypoints) and, for a filtered search, the photo ids allowed (an `IdFilter`,
cached by the search: `engine.search.filters`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.search.candidates import Candidate, PhotoRefs
from engine.search.verify import StoredFeatures, StoredVectors
from models.local_features import FEATURES_KEY, LocalFeatures, matching_descriptors
from models.verification import Verification, fit_instances
from storage.catalogue import PhotoRef
from storage.descriptors.base import DescriptorIndex
from storage.index.filters import IdFilter, as_filter

__all__ = ["Instance", "merge_instances", "unique_candidate_points", "vote", "vote_and_verify"]

#: Neighbours fetched per query descriptor; the first from another photo is the ratio test's
#: reference. Five was the reference run's choice; more mostly finds the same photo again.
NEIGHBOURS = 5
#: Lowe's ratio on distances (0.8 as in the pairwise verification).
RATIO = 0.8
#: Photos verified per query, most votes first.
TOP_PHOTOS = 20
#: Fewer votes than this cannot give a verified fit (12 inliers) and is not tried.
MIN_VOTES = 12
#: Copies of one catalogue photo looked for in one query photo.
MAX_COPIES = 2


@dataclass(frozen=True)
class Instance:
    """One verified copy of a catalogue photo in the query."""

    photo_id: int
    votes: int
    verification: Verification
    #: Keypoints stored for the catalogue photo.
    photo_keypoints: int


def vote(
    index: DescriptorIndex,
    query: LocalFeatures,
    *,
    allowed: IdFilter | Iterable[int] | None = None,
) -> dict[int, np.ndarray]:
    """Putative matches per catalogue photo: ``{photo id: (query kp, photo kp) rows}``.

    The ratio test compares with the nearest descriptor of another photo of the *whole*
    catalogue, so a filtered search (``allowed``) never passes a match that a filtered-out
    look-alike would have contested.
    """
    if len(query) == 0 or index.size == 0:
        return {}
    desc = np.ascontiguousarray(matching_descriptors(query), dtype=np.float32)
    dist, photos, points = index.search(desc, NEIGHBOURS)
    first = photos[:, 0]
    # Distance to the nearest neighbour from another photo than the first (inf if none).
    other = np.where((photos != first[:, None]) & (photos >= 0), dist, np.inf).min(axis=1)
    passed = (first >= 0) & (dist[:, 0] < RATIO**2 * other)
    scope = as_filter(allowed)
    if scope is not None:
        # A vectorised lookup in the sorted ids: no Python set of the allowed photos per query.
        passed &= scope.mask(first)
    rows = np.flatnonzero(passed)
    by_photo: dict[int, list[tuple[int, int]]] = {}
    for q in rows:
        by_photo.setdefault(int(first[q]), []).append((int(q), int(points[q, 0])))
    return {pid: np.array(pairs, dtype=np.int64) for pid, pairs in by_photo.items()}


def vote_and_verify(
    index: DescriptorIndex,
    stored: StoredFeatures,
    query: LocalFeatures,
    *,
    allowed: IdFilter | Iterable[int] | None = None,
) -> list[Instance]:
    """The verified copies of catalogue photos in ``query``, most inliers first."""
    votes = vote(index, query, allowed=allowed)
    ranked = sorted(
        (pid for pid, pairs in votes.items() if len(pairs) >= MIN_VOTES),
        key=lambda pid: -len(votes[pid]),
    )[:TOP_PHOTOS]
    if not ranked:
        return []
    features = stored.local_features(ranked, FEATURES_KEY)
    found = []
    for pid in ranked:
        blob = features.get(pid)
        if blob is None:  # deleted since the index was built
            continue
        candidate = LocalFeatures.from_bytes(blob)
        pairs = unique_candidate_points(votes[pid], len(candidate))
        for fit in fit_instances(query, candidate, pairs, max_instances=MAX_COPIES):
            if fit.is_match:
                found.append(
                    Instance(
                        photo_id=pid,
                        votes=len(pairs),
                        verification=fit,
                        photo_keypoints=len(candidate),
                    )
                )
    found.sort(key=lambda i: -i.verification.inliers)
    return found


def unique_candidate_points(pairs: np.ndarray, n_points: int) -> np.ndarray:
    """Pairs whose catalogue keypoint exists, each query point once (its first vote)."""
    pairs = pairs[pairs[:, 1] < n_points]
    _, first = np.unique(pairs[:, 0], return_index=True)
    return pairs[np.sort(first)]


def merge_instances(
    candidates: list[Candidate],
    instances: list[Instance],
    *,
    refs: dict[int, PhotoRef],
    photos: PhotoRefs,
    vectors: StoredVectors,
    query_vectors: np.ndarray,
    model: tuple[str, str],
) -> tuple[list[Candidate], dict[int, PhotoRef]]:
    """Fuse the verified copies into the CNN's candidates, one candidate per object.

    An object already among the candidates takes the copy's verification when it has more
    inliers than its own; further copies of it are kept as ``copies``. An object the CNN did
    not rank joins the pool with its photo's similarity to the query (best query view).
    """
    refs = refs | photos.photo_refs({i.photo_id for i in instances} - refs.keys())
    by_object = {c.object_id: c for c in candidates}
    fresh: dict[str, Candidate] = {}
    for inst in instances:  # most inliers first
        ref = refs.get(inst.photo_id)
        if ref is None:  # deleted since the index was built
            continue
        cand = by_object.get(ref.object_id) or fresh.get(ref.object_id)
        if cand is None:
            cand = Candidate(object_id=ref.object_id, photo_id=inst.photo_id, similarity=-1.0)
            fresh[ref.object_id] = cand
        own = cand.verification
        if own is None or not own.is_match or inst.verification.inliers > own.inliers:
            if own is not None and own.is_match and not _same_box(own, inst.verification):
                cand.copies.append(own)
            cand.photo_id = inst.photo_id
            cand.verification = inst.verification
            cand.inliers = inst.verification.inliers
            cand.photo_keypoints = inst.photo_keypoints
        elif not any(_same_box(inst.verification, c) for c in [own, *cand.copies]):
            cand.copies.append(inst.verification)
    if fresh:
        stored = vectors.photo_vectors([c.photo_id for c in fresh.values()], *model)
        for cand in fresh.values():
            vec = stored.get(cand.photo_id)
            cand.similarity = float(np.max(query_vectors @ vec)) if vec is not None else 0.0
    return candidates + list(fresh.values()), refs


def _same_box(a: Verification, b: Verification) -> bool:
    return (
        a.query_box is not None and b.query_box is not None and a.query_box.iou(b.query_box) > 0.5
    )
