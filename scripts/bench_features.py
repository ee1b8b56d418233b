"""Local features in the blob store vs in database rows, on a real photo set.

Prints (medians; timings are noisy on a shared machine, compare within one run):
- feature blob bytes per photo: format 1 (.npz, zlib) and format 2 (zstd), encode/decode ms;
- reading the features of N candidates (a query's verification) and a full pass
  (a descriptor-index rebuild): rows in SQLite vs blobs in a local blob store;
- database bytes per photo either way;
- the descriptor index's bytes per photo on disk and in RAM (RSS growth on loading it).

    PYTHONPATH=. python scripts/bench_features.py /work/shared/eval/museum-paintings
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.services import _fill_descriptor_index
from kernel.schemas import ObjectCreate
from models.images import decode_image
from models.local_features import FEATURES_KEY, LocalFeatures, extract_local_features
from storage.blobs import LocalBlobStore
from storage.catalogue import Catalogue, create_catalogue
from storage.catalogue.repository import NewPhoto
from storage.descriptors.base import DescriptorMeta
from storage.descriptors.registry import create_descriptor_index
from storage.features import FeatureStore


def _v1(f: LocalFeatures) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        version=np.int32(1),
        keypoints=f.keypoints,
        descriptors=f.descriptors,
        meta=np.array([f.width, f.height], dtype=np.int64),
        scale=np.float64(f.scale),
        method=np.array(f.method),
    )
    return buf.getvalue()


def _ms(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def _fill(cat: Catalogue, blobs: list[bytes]) -> list[int]:
    ids = []
    for i, data in enumerate(blobs):
        sha = f"{i:064x}"
        ids.append(
            cat.add_photo(
                record=ObjectCreate(object_id=f"o{i}", institution="M"),
                photo=NewPhoto(sha, sha, sha, 1, 1, "jpeg"),
                model="m",
                model_version="1",
                vector=np.ones(4, np.float32),
                local_features=(FEATURES_KEY, data),
            ).photo_id
        )
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("set", type=Path)
    parser.add_argument("--candidates", type=int, default=20)
    args = parser.parse_args()
    with (args.set / "catalogue.csv").open() as fh:
        images = [args.set / row["image"] for row in csv.DictReader(fh)]
    feats = [extract_local_features(decode_image(p.read_bytes()).to_array()) for p in images]
    v1 = [_v1(f) for f in feats]
    v2 = [f.to_bytes() for f in feats]
    print(f"photos: {len(feats)}, keypoints median {statistics.median(len(f) for f in feats)}")
    print(f"bytes/photo v1 npz+zlib: {statistics.median(map(len, v1)):.0f}")
    print(f"bytes/photo v2 zstd:     {statistics.median(map(len, v2)):.0f}")
    enc1, enc2 = _ms(lambda: _v1(feats[0]), 50), _ms(lambda: feats[0].to_bytes(), 50)
    print(f"encode ms v1 {enc1:.2f}  v2 {enc2:.2f}")
    print(
        f"decode ms v1 {_ms(lambda: LocalFeatures.from_bytes(v1[0]), 50):.2f}  "
        f"v2 {_ms(lambda: LocalFeatures.from_bytes(v2[0]), 50):.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = create_catalogue(f"sqlite:///{root / 'rows.sqlite3'}")
        rows2 = create_catalogue(f"sqlite:///{root / 'rows2.sqlite3'}")
        store = LocalBlobStore(root / "blobs")
        blobs = create_catalogue(
            f"sqlite:///{root / 'blobs.sqlite3'}", features=FeatureStore(store)
        )
        ids_rows, ids_rows2, ids_blobs = _fill(rows, v1), _fill(rows2, v2), _fill(blobs, v2)
        rng = random.Random(0)
        picks = [rng.sample(range(len(feats)), args.candidates) for _ in range(60)]

        def read(cat: Catalogue, ids: list[int]) -> None:
            it = iter(picks)

            def once() -> None:
                got = cat.local_features([ids[i] for i in next(it)], FEATURES_KEY)
                for data in got.values():
                    LocalFeatures.from_bytes(data)

            print(f"  {args.candidates} candidates read+decode ms: {_ms(once, 60):.2f}")

        print("before (v1 rows in SQLite):")
        read(rows, ids_rows)
        print("v2 rows in SQLite:")
        read(rows2, ids_rows2)
        print("after (v2 blobs, local store, parallel GETs):")
        read(blobs, ids_blobs)
        for name, cat in (("rows", rows), ("rows2", rows2), ("blobs", blobs)):
            t = time.perf_counter()
            n = sum(len(b) for b in cat.iter_local_features(FEATURES_KEY))
            print(f"full pass ({name}): {(time.perf_counter() - t) * 1e3:.0f} ms for {n} photos")
        for name, cat in (("rows", rows), ("rows2", rows2), ("blobs", blobs)):
            # WAL mode: checkpointed first, so the main file holds everything.
            with cat.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            size = (root / f"{name}.sqlite3").stat().st_size
            print(f"database bytes/photo ({name}): {size / len(feats):.0f}")

        index = create_descriptor_index(
            "faiss", directory=root / "idx", meta=DescriptorMeta(features_key=FEATURES_KEY)
        )
        _fill_descriptor_index(index, blobs, FEATURES_KEY)
        index.save()
        size = index.size
        del index
        disk = sum(p.stat().st_size for p in (root / "idx").rglob("*") if p.is_file())
        # In a fresh process: this one's allocator would reuse the built index's memory.
        code = (
            "import sys; from pathlib import Path; from scripts.bench_features import _rss; "
            "from storage.descriptors.registry import load_descriptor_index as load; "
            f"b = _rss(); i = load('faiss', Path({str(root / 'idx')!r}), "
            f"features_key={FEATURES_KEY!r}); print(_rss() - b)"
        )
        ram = int(
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True
            ).stdout.split()[-1]
        )
        print(
            f"descriptor index: {size} descriptors; bytes/photo on disk "
            f"{disk / len(feats):.0f}, in RAM (RSS growth on loading) {ram / len(feats):.0f}"
        )
        rows2.close()
        rows.close()
        blobs.close()


if __name__ == "__main__":
    main()
