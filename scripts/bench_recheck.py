"""How long a retroactive re-check takes: N checked listings (generated photos, a few of
them showing the object), then the object is reported stolen and every listing is searched
again for it from the stored features.

    python scripts/bench_recheck.py [--listings 1000] [--hits 5] [--workers 2]

The listings are stored as a listing check stores them (`ingest.recheck.keep_listing_features`
and a listing_checks row) without running a search each, which would only slow the set-up;
the catalogue is a temporary embedded one with the fake embedder (the decision is geometric:
the CNN vector only adds the similarity to an alert).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from engine.services import build_services  # noqa: E402
from ingest.catalogue_csv import iter_items, read_catalogue_csv  # noqa: E402
from ingest.photos import ingest_photos  # noqa: E402
from ingest.recheck import keep_listing_features, recheck_object  # noqa: E402
from kernel.enums import ObjectStatus  # noqa: E402
from kernel.schemas import StatusChange  # noqa: E402
from kernel.settings import EmbedderSettings, Settings  # noqa: E402
from models.embedders import FakeEmbedder  # noqa: E402
from models.images import decode_image  # noqa: E402
from models.local_features import LocalFeatures  # noqa: E402
from storage.catalogue.alerts import AlertStore  # noqa: E402
from tests.utils.catalogue import write_catalogue  # noqa: E402
from tests.utils.images import (  # noqa: E402
    jpeg_bytes,
    keypoint_texture,
    photographed,
    textured_object,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=1000)
    parser.add_argument("--hits", type=int, default=5, help="listings showing the object")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home, embedder=EmbedderSettings(name="fake", batch_size=8))
        services = build_services(settings, embedder=FakeEmbedder())
        ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(Path(tmp) / "m"))))
        store = AlertStore(services.catalogue.engine)

        def one(n: int) -> int:
            # Every n-th listing shows obj-1 (photographed anew); the others other things.
            if args.hits and n % max(1, args.listings // args.hits) == 0:
                img = photographed(textured_object(1), seed=n + 1)
            else:
                # Busy photos: as many keypoints as a real listing photo keeps (1,000).
                img = Image.fromarray(keypoint_texture(1000 + n, size=(800, 600)))
            data = jpeg_bytes(img)
            image = decode_image(data, source=f"L{n}.jpg")
            keep_listing_features(services, image, store=store)
            services.catalogue.record_listing_check(
                {
                    "source": "bench-house",
                    "listing_id": f"L{n}",
                    "image": f"L{n}.jpg",
                    "image_sha256": hashlib.sha256(data).hexdigest(),
                    "is_hit": False,
                    "matches_json": "[]",
                    "model_version": "fake",
                    "price": f"{100 + n} EUR",
                }
            )
            return n

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(one, range(args.listings)))
        setup = time.perf_counter() - started
        keypoints = [
            len(LocalFeatures.from_bytes(item.features))
            for batch in store.iter_checked_listings()
            for item in batch
        ]

        services.catalogue.set_status("obj-1", StatusChange(status=ObjectStatus.STOLEN))
        result = recheck_object(services, "obj-1", store=store, workers=args.workers)
        print(
            f"set-up: {args.listings} listings stored in {setup:.1f} s "
            f"(mean {sum(keypoints) / len(keypoints):.0f} keypoints a photo)"
        )
        print(
            f"re-check: {result.listings} listings in {result.seconds:.1f} s "
            f"({1000 * result.seconds / max(1, result.listings):.1f} ms a listing, "
            f"{args.workers} workers): {len(result.hits)} hits, "
            f"{len(result.new_alerts)} new alerts"
        )
        services.close()


if __name__ == "__main__":
    main()
