"""Listing checks on Dask distributed: a `LocalCluster` of worker processes on this machine,
or the cluster behind a scheduler address (``ARTMATCH_BATCH__SCHEDULER``).

Each worker builds the services (CNN, vector index, descriptor index, catalogue) once, in
`ServicesPlugin.setup`, and keeps them on the plugin for every chunk it computes; nothing is
held at module level. Workers return their outcomes to the client, which alone writes
(`ingest.batch.work.commit_chunk`), chunk by chunk as they complete.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from itertools import islice
from typing import Any

from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from engine.services import Services, build_services
from ingest.batch.work import ListingOutcome, ListingTask, compute_chunk
from kernel.errors import ArtmatchError
from kernel.memory import keep_freed_memory
from kernel.settings import Settings

__all__ = ["PLUGIN_NAME", "DaskMapper", "ServicesPlugin", "compute_on_worker", "open_cluster"]

log = logging.getLogger(__name__)

PLUGIN_NAME = "artmatch-services"


class ServicesPlugin(WorkerPlugin):
    """Builds a worker's services once, when the worker starts (or joins later).

    Carries the client's settings, so that every worker searches the same catalogue, blob
    store and index with the same rules; ``build`` (picklable) stands in for
    `build_services` in tests.
    """

    name = PLUGIN_NAME

    def __init__(
        self, settings: Settings, *, build: Callable[[Settings], Services] | None = None
    ) -> None:
        self.settings = settings
        self.build = build
        self.services: Services | None = None

    def setup(self, worker: Any) -> None:
        # The worker's process, once: SIFT's buffers reused from listing to listing.
        keep_freed_memory(self.settings.keep_freed_mb)
        self.services = (self.build or build_services)(self.settings)

    def teardown(self, worker: Any) -> None:
        # Only the connections: `Services.close` saves the indexes, and workers never write.
        if self.services is not None:
            self.services.catalogue.close()


def compute_on_worker(tasks: list[ListingTask]) -> list[ListingOutcome]:
    """A chunk's outcomes, with the services this worker built at start."""
    plugin = get_worker().plugins.get(PLUGIN_NAME)
    services = plugin.services if isinstance(plugin, ServicesPlugin) else None
    if services is None:
        raise RuntimeError("the artmatch worker plugin has not set up its services")
    # A worker outlives runs: photos added or reported lost since reach it here.
    services.refresh()
    return compute_chunk(services, tasks)


@contextmanager
def open_cluster(settings: Settings, *, scheduler: str) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler``, or of a new local cluster ("local")."""
    with ExitStack() as stack:
        try:
            if scheduler == "local":
                workers = settings.batch.workers or os.cpu_count() or 1
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        # No dashboard, and the scheduler's HTTP endpoint (health checks) on
                        # a free port: two runs on one host must not fight over 8787.
                        dashboard_address=None,
                        scheduler_kwargs={"dashboard_address": ":0"},
                        silence_logs=logging.WARNING,
                    )
                )
                client = stack.enter_context(Client(cluster))
            else:
                client = stack.enter_context(Client(scheduler, timeout="30s"))
        except OSError as exc:
            raise ArtmatchError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
        yield client


class DaskMapper:
    """Sends chunks to the cluster's workers, a few per worker in flight, and yields each
    chunk's outcomes as it completes (not in manifest order)."""

    def __init__(
        self,
        client: Client,
        settings: Settings,
        *,
        build: Callable[[Settings], Services] | None = None,
        per_worker: int = 2,
    ) -> None:
        self._client = client
        self._per_worker = per_worker
        # Registered anew per run: a long-lived cluster gets this run's settings.
        client.register_plugin(ServicesPlugin(settings, build=build), name=PLUGIN_NAME)

    def map(
        self, chunks: Iterable[list[ListingTask]]
    ) -> Generator[list[ListingOutcome], None, None]:
        pending = iter(chunks)
        workers = max(len(self._client.scheduler_info(n_workers=-1)["workers"]), 1)
        in_flight = workers * self._per_worker
        # pure=False: a chunk resubmitted (a resumed run) is computed again, not looked up.
        submitted = {
            self._client.submit(compute_on_worker, chunk, pure=False)
            for chunk in islice(pending, in_flight)
        }
        futures = as_completed(submitted)
        try:
            for future in futures:
                outcomes: list[ListingOutcome] = future.result()
                # Dropped at once: a future held keeps its result in a worker's memory.
                submitted.discard(future)
                for chunk in islice(pending, 1):
                    nxt = self._client.submit(compute_on_worker, chunk, pure=False)
                    submitted.add(nxt)
                    futures.add(nxt)
                yield outcomes
        finally:
            # A run stopped early (an error, a stop request) leaves nothing computing.
            for future in submitted:
                future.cancel()
