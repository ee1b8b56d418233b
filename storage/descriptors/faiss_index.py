"""``faiss``: the catalogue's local descriptors in FAISS, saved as files (the default type).

Three layouts, chosen by size:

- **exact** (``IndexIDMap2(IndexFlatL2)``) while the index holds at most `EXACT_MAX`
  descriptors (about ten photos): nothing to train, every neighbour exact. A query's ~4,000
  descriptors cost a full matrix product against it: measured 0.33 s at 10,000 descriptors
  and 1.4 s at 50,000, against 0.06-0.16 s for the IVF layout.
- **ivf** (``IVF<nlist>,SQ4``, labels kept in the inverted lists) beyond it: each dimension
  quantised to 4 bits, and a query descriptor scans `NPROBE` of ``nlist`` lists. The index
  switches by itself when an `add` crosses `EXACT_MAX`, training on what it holds; a rebuild
  (`engine.services.open_descriptor_index`) instead calls `train` first with a sample spread
  over the catalogue and the size it will reach, and an index grown `OUTGROWN_FACTOR` times
  past its training says so (`outgrown`) so that the next start rebuilds it.
- **compact** (``IVF<nlist>_HNSW32,PQ16``) when a rebuild plans `COMPACT_FROM` descriptors or
  more (a national registry: ~135,000 photos and up): each photo's strongest
  `COMPACT_PER_PHOTO` descriptors (stored features come strongest first), 16-byte PQ codes,
  lists found through an HNSW graph of their centroids (trained by two-level k-means, which
  takes minutes where plain k-means over 65,536 lists would take hours on 2 cores), and
  `COMPACT_NPROBE` lists scanned for each of the query's strongest
  `COMPACT_QUERY_DESCRIPTORS` descriptors. 24 bytes per descriptor (16 code + 8
  label), ~6 KB per photo: a million photos in ~6 GB of RAM, where SQ4 would need ~53 GB.

SQ4 was chosen by measurement (README, "How matching works"): on the 120 seizure-lot photos
it found 259 of 269 objects against 260 with uncompressed IVF-Flat, with no new wrong object
there nor on 500 photos of objects not in the catalogue, at a seventh of the memory. SQ8 and
PQ32 each let one more wrong object through; PQ64 matched SQ4 but searched 10 times slower.

Memory (resident, measured; 1,000 descriptors per photo at most, ~740 on museum-paintings)::

    layout                     bytes/descriptor   per 1,000 descriptors   1.5M descriptors
    exact (Flat + IDMap2)      565                565 KB                  (not used)
    ivf, SQ4 (chosen)          64 code + 8 label   ~72 KB                  ~110 MB
    ivf, SQ8                   136-146            ~140 KB                 ~210 MB
    ivf, Flat                  520-730            ~520 KB                 ~0.8-1.1 GB

The files hold the same (``.faiss`` 74.5 B/descriptor for museum-paintings with SQ4,
quantiser included). A rebuild from the stored features (read, train, add, save; 2 cores,
otherwise idle) took 2.4 s for 287 photos / 212k descriptors and 11.5 s for 1,435 photos /
1.06M descriptors (13 s and 83 s under a load average of 6); a load 0.01-0.1 s.

Files, per features key (``<stem>`` is `storage.descriptors.base.descriptor_stem`)::

    <directory>/<stem>.faiss   the serialised FAISS index
    <directory>/<stem>.json    `DescriptorMeta`, the layout, the number of descriptors, the
                               size trained for and the photos held with no descriptor
    <directory>/<stem>.lock    taken by every save (exclusive) and load (shared); a save is
                               skipped when the saved file reflects a newer catalogue version
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kernel.errors import IndexNotReady, InvalidInput
from storage.descriptors.base import (
    MAX_PER_PHOTO,
    DescriptorIndex,
    DescriptorMeta,
    check_descriptors,
    descriptor_stem,
    pack_ids,
    unpack_ids,
)
from storage.descriptors.registry import register_descriptor_index
from storage.files import atomic_write, atomic_write_with, file_lock
from storage.index.base import saved_catalogue_version

__all__ = [
    "COMPACT_FROM",
    "COMPACT_PER_PHOTO",
    "EXACT_MAX",
    "IVF_CODE",
    "NPROBE",
    "FaissDescriptorIndex",
    "nlist_for",
    "nprobe_for",
]

log = logging.getLogger(__name__)

#: Descriptors held exactly; one more and the index trains an IVF (see the module doc).
EXACT_MAX = 10_000
#: FAISS factory code of the IVF layout's compressed vectors (measured: module doc).
IVF_CODE = "SQ4"
#: Inverted lists scanned per query descriptor: `NPROBE`, fewer (down to `MIN_NPROBE`) where
#: lists are long, so that a query descriptor scans about `SCAN_BUDGET` descriptors at most
#: (`nprobe_for`). Museum-paintings (212k descriptors, 1,024 lists of ~207) scans 16 lists,
#: ~3,300 descriptors. With 3,695 distractor photos added (1.48M, 2,048 lists of ~723) 16 lists
#: scanned 11,600 and half the query time went there; 8 and even 4 lists found the same 250
#: objects of the seizure lots laid on those distractors at p50 487 and 346 ms against 771 ms
#: (one run each, under the same load). 8 is the floor: half the probes of the measured case.
NPROBE = 16
MIN_NPROBE = 8
SCAN_BUDGET = 6_000
#: Training points per inverted list (FAISS wants >= 39) and k-means iterations: 40 and 10
#: trained museum-paintings' 1,024 lists in 1.7 s against 8.1 s for 64 and FAISS's 25, a
#: retrain that ends every large import (measured on this 2-core machine).
TRAIN_PER_LIST = 40
KMEANS_ITERATIONS = 10
#: Seed of the training subsample and of k-means' first centroids. The lists a seed draws
#: move a handful of decisions on the evaluation sets (README, "The descriptor index's
#: training"); `scripts/bench_seeds.py` measures that spread.
KMEANS_SEED = 1234
#: An IVF index that has grown this many times past the size it was trained for reports
#: `outgrown`: the end of an ingest run (`engine.services.refresh_descriptors`) or the next
#: start rebuilds it with more lists. Doubling keeps the total rebuild work linear.
OUTGROWN_FACTOR = 2
#: Planned descriptors from which a rebuild makes the compact layout: 100M (~135,000 photos
#: of ~740) would take 7.2 GB of RAM as SQ4, a third of this 24 GB machine; chosen by memory,
#: not by measured recall (README, "The descriptor index at a million photos").
COMPACT_FROM = 100_000_000
#: Descriptors per photo the compact layout indexes (its strongest: labels stay the stored
#: keypoint positions 0..n-1). Verification still reads every stored keypoint.
COMPACT_PER_PHOTO = 256
#: The compact layout's codes, lists scanned per query descriptor, and the HNSW search depth
#: of its coarse quantiser (README, "The descriptor index at a million photos").
COMPACT_CODE = "PQ16"
COMPACT_NPROBE = 4
COMPACT_EF_SEARCH = 16
#: Query descriptors the compact layout searches: the query's strongest 2,500 of up to 4,000
#: (None: all). At a million photos the whole one-object query took p95 483 ms with 2,500 and
#: 602 ms with all; the seizure lots' objects found went from 218 to 215 of 269 there, and
#: from 238 to 235 with the real photos alone (README, "The descriptor index at a million
#: photos").
COMPACT_QUERY_DESCRIPTORS: int | None = 2_500


def nprobe_for(size: int, nlist: int) -> int:
    """Lists to scan in an IVF index of ``size`` descriptors in ``nlist`` lists."""
    per_list = max(size / max(nlist, 1), 1.0)
    return int(min(NPROBE, max(MIN_NPROBE, SCAN_BUDGET // per_list)))


def nlist_for(expected: int) -> int:
    """Inverted lists for about ``expected`` descriptors: the power of two nearest
    2 * sqrt(expected), 1,024 for the 211,661 of museum-paintings (the measured setting)."""
    return int(2 ** round(math.log2(max(2 * math.sqrt(max(expected, 1)), 64))))


@register_descriptor_index("faiss")
class FaissDescriptorIndex:
    """Squared-L2 nearest descriptors (RootSIFT rows are unit length), exact or IVF-SQ4."""

    def __init__(
        self,
        directory: Path,
        meta: DescriptorMeta,
        *,
        faiss_index: Any = None,
        empty: Iterable[int] = (),
        trained_for: int = 0,
    ) -> None:
        """A new, empty index; with ``faiss_index``, that one (already read and checked)."""
        self.directory = Path(directory)
        self.meta = meta
        if faiss_index is None:
            faiss_index = faiss.IndexIDMap2(faiss.IndexFlatL2(meta.dim))
        self._index: Any = faiss_index
        if self.layout == "ivf":
            faiss.extract_index_ivf(self._index).nprobe = NPROBE
        #: Descriptors the IVF layout was trained for (0: exact).
        self.trained_for = trained_for
        # Descriptors per photo held, read from the index's own labels: an add of a new photo
        # then skips the removal pass, and `photo_ids` costs nothing. A photo indexed with no
        # descriptor (a blank photo) counts 0: held, so the fingerprint of what the index
        # holds matches the catalogue's, but nothing to search.
        photos, counts = np.unique(unpack_ids(self._labels())[0], return_counts=True)
        self._held: dict[int, int] = {int(p): 0 for p in empty}
        self._held.update(zip(photos.tolist(), counts.tolist(), strict=True))

    @classmethod
    def create(cls, *, directory: Path, meta: DescriptorMeta) -> FaissDescriptorIndex:
        return cls(directory, meta)

    @property
    def layout(self) -> str:
        """ "exact", "ivf" (SQ4) or "compact" (PQ, HNSW coarse quantiser)."""
        if isinstance(self._index, faiss.IndexIDMap2):
            return "exact"
        return "compact" if isinstance(faiss.downcast_index(self._ivf), faiss.IndexIVFPQ) else "ivf"

    @property
    def _ivf(self) -> Any:
        return faiss.extract_index_ivf(self._index)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def lists(self) -> int:
        """Inverted lists of the IVF layout (0 while exact)."""
        return 0 if self.layout == "exact" else int(faiss.extract_index_ivf(self._index).nlist)

    @property
    def outgrown(self) -> bool:
        return self.layout != "exact" and self.size > OUTGROWN_FACTOR * self.trained_for

    def outgrown_after(self, counts: Sequence[int]) -> bool:
        if self.layout == "compact":  # `add` keeps a photo's strongest COMPACT_PER_PHOTO
            counts = [min(n, COMPACT_PER_PHOTO) for n in counts]
        sizes = self.size + np.cumsum(np.asarray(counts, dtype=np.int64))
        if not len(sizes):
            return self.outgrown
        trained_for = self.trained_for
        if self.layout == "exact":
            # `add` trains the IVF layout for the size it holds once it passes EXACT_MAX.
            crossing = np.flatnonzero(sizes > EXACT_MAX)
            if not len(crossing):
                return False
            trained_for = int(sizes[crossing[0]])
        return bool(sizes[-1] > OUTGROWN_FACTOR * trained_for)

    def adopt(self, rebuilt: DescriptorIndex) -> None:
        if not isinstance(rebuilt, FaissDescriptorIndex):
            raise TypeError("a FAISS descriptor index adopts only another one")
        self._index = rebuilt._index
        self._held = dict(rebuilt._held)
        self.trained_for = rebuilt.trained_for
        self.meta.version += 1

    @property
    def _index_file(self) -> Path:
        return self.directory / f"{descriptor_stem(self.meta.features_key)}.faiss"

    @property
    def _meta_file(self) -> Path:
        return self._index_file.with_suffix(".json")

    def _labels(self) -> np.ndarray:
        if self.layout == "exact":
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        ivf = faiss.extract_index_ivf(self._index)
        lists = ivf.invlists
        assert lists is not None  # an IVF index always has its lists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(ivf.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def photo_ids(self) -> np.ndarray:
        return np.array(sorted(self._held), dtype=np.int64)

    def add(self, photo_id: int, descriptors: np.ndarray) -> None:
        vectors = check_descriptors(descriptors, self.meta.dim)
        if self.layout == "compact":
            vectors = vectors[:COMPACT_PER_PHOTO]
        self._forget([int(photo_id)])
        if len(vectors):
            self._index.add_with_ids(vectors, pack_ids(int(photo_id), len(vectors)))
        self._held[int(photo_id)] = len(vectors)
        self.meta.version += 1
        if self.layout == "exact" and self.size > EXACT_MAX:
            held = self._index.index.reconstruct_n(0, self.size)
            self.train(held, expected=self.size)

    def _forget(self, photo_ids: Iterable[int]) -> tuple[bool, int]:
        """(whether any was held, descriptors removed), in one pass over the index."""
        counts = [(pid, self._held.pop(pid)) for pid in photo_ids if pid in self._held]
        labels = [pack_ids(pid, count) for pid, count in counts if count]
        if not labels:
            return bool(counts), 0
        if len(labels) == 1:  # a photo's labels are one contiguous range
            first = int(labels[0][0])
            selector: Any = faiss.IDSelectorRange(first, first + MAX_PER_PHOTO)
        else:
            selector = faiss.IDSelectorBatch(np.concatenate(labels))
        return True, int(self._index.remove_ids(selector))

    def remove(self, photo_ids: Sequence[int] | np.ndarray) -> int:
        unique = np.unique(np.asarray(photo_ids, dtype=np.int64)).tolist()
        changed, removed = self._forget(unique)
        if changed:
            self.meta.version += 1
        return removed

    def search(self, descriptors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(descriptors, dtype=np.float32).reshape(-1, self.meta.dim)
        if self.size == 0 or len(queries) == 0:
            n = len(queries)
            return (
                np.full((n, k), np.inf, np.float32),
                np.full((n, k), -1, np.int64),
                np.full((n, k), -1, np.int32),
            )
        params = None
        searched = len(queries)
        if self.layout == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = nprobe_for(self.size, self.lists)
        elif self.layout == "compact":
            params = faiss.SearchParametersIVF()
            params.nprobe = COMPACT_NPROBE
            graph = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # not in the stubs
            graph.efSearch = COMPACT_EF_SEARCH
            params.quantizer_params = graph
            # The query's strongest descriptors only (query features come strongest first);
            # the rest get no neighbour, as if nothing were near them.
            searched = min(searched, COMPACT_QUERY_DESCRIPTORS or searched)
        dist, labels = self._index.search(queries[:searched], k, params=params)
        if searched < len(queries):  # the rest: no neighbour
            rest = len(queries) - searched
            dist = np.vstack([dist, np.full((rest, k), np.inf, np.float32)])
            labels = np.vstack([labels, np.full((rest, k), -1, np.int64)])
        dist[labels < 0] = np.inf
        photos, points = unpack_ids(labels)
        return dist, photos, points

    def training_points(self, expected: int) -> int:
        """`TRAIN_PER_LIST` points for each of the lists `nlist_for` plans (0 while exact)."""
        return 0 if expected <= EXACT_MAX else TRAIN_PER_LIST * nlist_for(expected)

    def train(self, sample: np.ndarray, *, expected: int) -> None:
        """Prepare for about ``expected`` descriptors, ``sample`` being some of them: at most
        `EXACT_MAX` stays exact, more trains the IVF layout (from `COMPACT_FROM`, the compact
        one) and moves what is held into it. An index already trained is left alone (a
        rebuild makes a new one)."""
        if self.layout != "exact" or expected <= EXACT_MAX:
            return
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if sample.ndim != 2 or sample.shape[1] != self.meta.dim:
            raise InvalidInput(f"training sample of shape {sample.shape}")
        # Fewer lists than planned when the sample is too small to train them.
        nlist = min(nlist_for(expected), 2 ** int(math.log2(max(len(sample) // 39, 1))))
        if nlist < 64:
            return
        # An order of the points' own, not the one they came in: the subsample and k-means'
        # first centroids are drawn by position, so the lists followed the order in which
        # keypoints were stored (position order before issue 13, strongest first since).
        sample = sample[_canonical_order(sample)]
        keep = TRAIN_PER_LIST * nlist
        if len(sample) > keep:
            rng = np.random.default_rng(KMEANS_SEED)
            sample = sample[np.sort(rng.choice(len(sample), keep, replace=False))]
        compact = expected >= COMPACT_FROM
        ivf = _trained_compact(sample, nlist) if compact else _trained_ivf(sample, nlist)
        if self.size:
            vectors = self._index.index.reconstruct_n(0, self.size)
            labels = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            if compact:  # each photo's first COMPACT_PER_PHOTO keypoints, as `add` keeps
                keep_rows = unpack_ids(labels)[1] < COMPACT_PER_PHOTO
                vectors, labels = vectors[keep_rows], labels[keep_rows]
                self._held = {pid: min(n, COMPACT_PER_PHOTO) for pid, n in self._held.items()}
            ivf.add_with_ids(vectors, labels)
        self._index = ivf
        self.trained_for = expected
        faiss.extract_index_ivf(ivf).nprobe = NPROBE

    def save(self) -> None:
        """Write index then metadata, each through a temp file and rename.

        A crash between the two leaves metadata that no longer matches; `load` then refuses
        the pair and the next start rebuilds, so a reader never trusts half a save. Skipped
        when the saved file reflects a newer catalogue version than this index does.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with file_lock(self._index_file.with_suffix(".lock")):
            saved = saved_catalogue_version(self._meta_file)
            if saved > self.meta.catalogue_version:
                log.info(
                    "descriptor index not saved: the saved one reflects catalogue version %d, "
                    "this one %d",
                    saved,
                    self.meta.catalogue_version,
                )
                return
            # Straight to the file: a serialised copy in memory would double a national
            # registry's ~6 GB (the compact layout at a million photos).
            atomic_write_with(self._index_file, lambda tmp: faiss.write_index(self._index, tmp))
            meta = self.meta.__dict__ | {
                "layout": self.layout,
                "ntotal": self.size,
                "empty": sorted(p for p, count in self._held.items() if not count),
                "trained_for": self.trained_for,
            }
            atomic_write(self._meta_file, json.dumps(meta, indent=2).encode())

    @classmethod
    def load(cls, directory: Path, *, features_key: str) -> FaissDescriptorIndex:
        """Load a saved index; `IndexNotReady` if missing, damaged or of other features."""
        stem = descriptor_stem(features_key)
        index_file, meta_file = directory / f"{stem}.faiss", directory / f"{stem}.json"
        try:
            # Shared: a save in another process never swaps the pair between the two reads.
            with file_lock(directory / f"{stem}.lock", shared=True):
                raw = json.loads(meta_file.read_text())
                index = faiss.read_index(str(index_file))
            layout, ntotal = raw.pop("layout"), raw.pop("ntotal")
            empty, trained_for = raw.pop("empty"), raw.pop("trained_for")
            meta = DescriptorMeta(**raw)
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise IndexNotReady(f"no usable descriptor index at {index_file}: {exc}") from None
        if meta.features_key != features_key:
            raise IndexNotReady(f"descriptor index at {index_file} holds other features")
        expected_type = faiss.IndexIDMap2 if layout == "exact" else faiss.IndexIVF
        if not isinstance(index, expected_type) or index.ntotal != ntotal or index.d != meta.dim:
            raise IndexNotReady(f"descriptor index at {index_file} does not match its metadata")
        return cls(directory, meta, faiss_index=index, empty=empty, trained_for=trained_for)


def _canonical_order(points: np.ndarray) -> np.ndarray:
    """A permutation of ``points`` that depends on the set alone: by a fixed random
    projection (rows that tie are equal, or as good as, so their order cannot matter)."""
    key = np.random.default_rng(0).standard_normal(points.shape[1])
    # In float64 as numpy would, a slice at a time: a whole float64 copy of a million-photo
    # sample (2.9M points) would take 3 GB.
    step = 1 << 16
    projected = np.concatenate(
        [points[i : i + step].astype(np.float64) @ key for i in range(0, len(points), step)]
    )
    return np.argsort(projected, kind="stable")


def _trained_ivf(sample: np.ndarray, nlist: int) -> Any:
    """An empty ``IVF<nlist>,SQ4`` index trained on ``sample`` (FAISS's k-means)."""
    ivf = faiss.index_factory(sample.shape[1], f"IVF{nlist},{IVF_CODE}", faiss.METRIC_L2)
    faiss.extract_index_ivf(ivf).cp.niter = KMEANS_ITERATIONS
    faiss.extract_index_ivf(ivf).cp.seed = KMEANS_SEED
    ivf.train(sample)
    return ivf


def _trained_compact(sample: np.ndarray, nlist: int) -> Any:
    """An empty compact index (``IVF<nlist>_HNSW32,PQ16``) trained on ``sample``.

    The lists come from two-level k-means (``faiss.contrib.clustering``: sqrt(nlist) coarse
    clusters, each split in proportion to its points), which FAISS's own training would
    replace with one k-means over every list; their centroids go into the HNSW quantiser
    first, so that `train` fits only the PQ codebooks on the residuals."""
    from faiss.contrib.clustering import two_level_clustering

    dim = sample.shape[1]
    centroids, _ = two_level_clustering(
        sample,
        max(int(math.sqrt(nlist)), 1),
        nlist,
        clustering_niter=KMEANS_ITERATIONS,
        seed=KMEANS_SEED,
        # Only silences FAISS's "please provide at least N training points" on stderr (the
        # sub-clusters of a split hold fewer than 39 a list by design); the lists are the same.
        min_points_per_centroid=1,
    )
    ivf = faiss.index_factory(dim, f"IVF{nlist}_HNSW32,{COMPACT_CODE}", faiss.METRIC_L2)
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(ivf).quantizer)
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    # Polysemous codes (FAISS's default for IVF-PQ) serve Hamming-filtered search, which
    # this index does not use; training them took 12 s of a 12.4 s train on 10,000 points.
    pq_index: Any = faiss.downcast_index(faiss.extract_index_ivf(ivf))
    pq_index.do_polysemous_training = False
    ivf.train(sample)  # the quantiser holds its nlist centroids: only PQ trains
    return ivf
