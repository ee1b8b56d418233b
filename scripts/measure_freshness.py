"""Measure what the per-search catalogue check costs (README, "Several processes on one
catalogue"): the median of N searches through the API with the check and with it switched
off, interleaved in blocks so that machine load hits both alike, and the check alone.

    python scripts/measure_freshness.py            # the default CNN, the 12-object demo catalogue
    python scripts/measure_freshness.py --fake     # the fake embedder: no CNN time
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from fastapi.testclient import TestClient

from engine.services import Services
from kernel.enums import Role
from kernel.settings import EmbedderSettings, Settings
from service import demo
from service.main import create_app
from service.security import hash_password, new_token


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--searches", type=int, default=200)
    ap.add_argument("--fake", action="store_true", help="the fake embedder instead of the CNN")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        embedder = EmbedderSettings(name="fake") if args.fake else EmbedderSettings()
        settings = Settings(home=Path(tmp), embedder=embedder)
        demo.seed(settings)
        query = demo.demo_query_photos(settings.home / "manifests" / "demo")[0].read_bytes()
        app = create_app(settings)
        with TestClient(app) as client:
            runtime = app.state.runtime
            while runtime.services is None:
                time.sleep(0.05)
            account = runtime.accounts.create_account(
                username="inv",
                password_hash=hash_password("x" * 12),
                role=Role.INVESTIGATOR,
                institution=None,
            )
            token, digest = new_token()
            runtime.accounts.add_token(account_id=account.id, name="m", token_sha256=digest)
            headers = {"Authorization": f"Bearer {token}"}

            def search() -> float:
                start = time.perf_counter()
                r = client.post(
                    "/api/v1/searches", headers=headers, files={"file": ("q.jpg", query)}
                )
                assert r.status_code == 200, r.text
                return time.perf_counter() - start

            for _ in range(5):
                search()
            timings: dict[str, list[float]] = {"with": [], "without": []}
            block = 20
            for _ in range(max(args.searches // block, 1)):
                timings["with"] += [search() for _ in range(block)]
                with mock.patch.object(Services, "refresh", lambda self: False):
                    timings["without"] += [search() for _ in range(block)]
            services = runtime.services
            alone = []
            for _ in range(2000):
                start = time.perf_counter()
                services.refresh()
                alone.append(time.perf_counter() - start)
    w, wo = statistics.median(timings["with"]), statistics.median(timings["without"])
    print(f"searches: {len(timings['with'])} with the check, {len(timings['without'])} without")
    print(f"median search with the check:    {w * 1000:.2f} ms")
    print(f"median search without the check: {wo * 1000:.2f} ms")
    print(f"difference of the medians:       {(w - wo) * 1000:+.2f} ms")
    print(f"the check alone (median of 2000): {statistics.median(alone) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
