"""Time an OAI-PMH harvest: N generated LIDO records, each with one small generated photo,
served by a real HTTP endpoint on loopback (100 records a page), harvested into a fresh
catalogue, then harvested again (every photo a duplicate).

    python -m scripts.bench_harvest [--records 1000] [--fake-embedder]

By default the photos go through the real ingest (CNN embedding and local features), as in
production; ``--fake-embedder`` leaves the CNN out to show the harvest's own cost.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from engine.services import build_services
from ingest.oaipmh import harvest
from ingest.photos import Outcome, ingest_photos
from kernel.settings import EmbedderSettings, ExchangeSettings, Settings
from tests.utils.images import jpeg_bytes, textured_object
from tests.utils.lido import OaiServer, oai_catalogue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--fake-embedder", action="store_true")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-harvest-"))
    try:
        started = time.perf_counter()
        with OaiServer() as server:
            oai_catalogue(
                server,
                n=args.records,
                per_page=args.per_page,
                image=lambda i: jpeg_bytes(textured_object(i, size=(240, 300))),
            )
            made = time.perf_counter() - started
            settings = Settings(
                home=home,
                embedder=EmbedderSettings(
                    name="fake" if args.fake_embedder else "efficientnet-lite0"
                ),
                exchange=ExchangeSettings(image_hosts=["127.0.0.1"]),
            )
            embedder = None
            if args.fake_embedder:
                from models.embedders import FakeEmbedder

                embedder = FakeEmbedder()
            services = build_services(settings, embedder=embedder)
            try:
                url = server.base + "/oai"
                for run in ("first", "again"):
                    t0 = time.perf_counter()
                    result = harvest(
                        settings, ingest=lambda items: ingest_photos(services, items), url=url
                    )
                    took = time.perf_counter() - t0
                    added = sum(o.outcome is Outcome.ADDED for o in result.outcomes)
                    dupes = sum(o.outcome is Outcome.DUPLICATE for o in result.outcomes)
                    print(
                        f"{run}: {result.records} records in {result.pages} pages, "
                        f"{added} added, {dupes} duplicates, {len(result.errors)} errors: "
                        f"{took:.1f} s ({result.records / took:.0f} records/s)"
                    )
                print(f"objects in the catalogue: {services.catalogue.count_objects()}")
            finally:
                services.close()
        print(f"(generating the records and photos took {made:.1f} s, not counted)")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
