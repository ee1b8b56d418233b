"""Settings, read once from ARTMATCH_* environment variables (and a .env file).

`Settings` holds the catalogue, model, storage and matching groups; `WebSettings` the web
service's own (``ARTMATCH_WEB_*``, flat for compatibility with existing deployments).

Nested groups use a double underscore: ``ARTMATCH_STORAGE__BACKEND=local``,
``ARTMATCH_EMBEDDER__NAME=efficientnet-lite0``. Nothing else in the code base reads the
environment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_path
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "AlertSettings",
    "BatchSettings",
    "EmbedderSettings",
    "ExchangeSettings",
    "IndexSettings",
    "IngestSettings",
    "MatchSettings",
    "Settings",
    "StorageSettings",
    "ThreadSettings",
    "WebSettings",
    "get_settings",
]


def _default_home() -> Path:
    return user_data_path("artmatch", appauthor=False)


class StorageSettings(BaseModel):
    #: Blob store backend, by registry name ("local", "memory"; "s3" once installed).
    backend: str = "local"
    #: Directory of the local blob store; default: <home>/blobs.
    path: Path | None = None
    #: SQLAlchemy URL of the catalogue; default: sqlite file <home>/catalogue.sqlite3.
    database_url: str | None = None
    #: Longest side of the stored thumbnails, in pixels.
    thumbnail_px: int = Field(default=256, ge=32, le=1024)
    #: S3 / MinIO backend ("s3"): endpoint as host:port, no scheme.
    s3_endpoint: str | None = None
    s3_bucket: str = "artmatch"
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_secure: bool = True
    s3_region: str | None = None
    #: Lifetime of presigned photo URLs, in seconds.
    s3_url_expiry_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)


class EmbedderSettings(BaseModel):
    #: Registry name of the embedder: "efficientnet-lite0" or "torchvision:<arch>".
    name: str = "efficientnet-lite0"
    #: Weights file for torchvision backbones (never downloaded).
    weights_path: Path | None = None
    #: Photos embedded per forward pass.
    batch_size: int = Field(default=16, ge=1, le=256)
    #: CPU threads the CNN may use (torch's, or ONNX Runtime's intra-op threads); 0 = the
    #: runtime's default (one per core). One thread measured faster on the 2-core reference
    #: machine (query p50 ~295 ms vs ~380 ms): the verify stage runs OpenCV beside the CNN, a
    #: server runs requests side by side, and ingest runs decode/SIFT workers beside it.
    threads: int = Field(default=1, ge=0)
    #: What runs efficientnet-lite0: "onnx" (ONNX Runtime on a graph exported from the torch
    #: model; the same vectors, ~3x faster on a CPU) or "torch" (the reference). torchvision
    #: backbones always run on torch.
    runtime: Literal["onnx", "torch"] = "onnx"
    #: Where the exported ONNX model is cached; default: <home>/models.
    model_dir: Path | None = None


class IngestSettings(BaseModel):
    #: Processes decoding, thumbnailing, extracting local features and (with a runtime that
    #: travels: ONNX Runtime) embedding catalogue photos while the writes run in the calling
    #: process; 0 = one per core, 1 = all in the calling process. A pool starts only for an
    #: ingest of more than one batch. README, "Ingest uses every core", has the figures.
    workers: int = Field(default=0, ge=0, le=64)


class IndexSettings(BaseModel):
    #: Index type, by its name in `storage.index.registry`: "auto" (exact up to
    #: ``exact_up_to`` photos, then IVF-PQ with an exact re-rank; saved incrementally), "flat"
    #: (exact FAISS search, the whole file saved per batch) or "memory" (numpy: tests).
    kind: str = "auto"
    #: ``auto``: photos up to which search stays exact (at least 512); past it the index
    #: wants training (`artmatch index train`, or a rebuild; never inside an ingest batch).
    exact_up_to: int = Field(default=50_000, ge=0)
    #: ``auto``: IVF lists scanned per query once trained.
    nprobe: int = Field(default=32, ge=1, le=4096)
    #: ``auto``: bytes of PQ code per photo once trained (divides ``pca_dim``).
    pq_m: int = Field(default=32, ge=1, le=256)
    #: ``auto``: dimensions the vectors are reduced to (PCA, not whitened: whitening lost
    #: recall) before IVF-PQ; 0 = none.
    pca_dim: int = Field(default=256, ge=0)
    #: ``auto``: candidates re-scored exactly from the stored vectors per query view.
    rerank: int = Field(default=512, ge=1, le=10_000)
    #: Local-descriptor index type, by its name in `storage.descriptors.registry`: "faiss"
    #: (exact while small, then IVF-SQ4; saved as files beside the vector index) or "memory"
    #: (numpy, never saved: tests).
    descriptor_kind: str = "faiss"
    #: Directory of the FAISS files; default: <home>/index.
    path: Path | None = None
    #: Keep a snapshot of the index in the blob store, loaded by other and restarted replicas
    #: instead of rebuilding; None = only when the blob store is shared (not local or memory).
    snapshots: bool | None = None


class MatchSettings(BaseModel):
    #: Similarity (cosine of the global descriptors) at or above which a candidate counts as
    #: a match when verification is off (see README, "How the settings were chosen").
    similarity_threshold: float = Field(default=0.91, ge=-1.0, le=1.0)
    #: Photo neighbours fetched per object returned, before aggregating per object.
    photos_per_object: int = Field(default=4, ge=1, le=64)
    #: Centre crops of the query (fraction of each side) embedded besides the whole photo;
    #: a seized item is often photographed with its surroundings (frame, wall, table).
    query_crops: tuple[float, ...] = (0.8, 0.6)
    #: Second stage: check the top candidates with local features and geometry.
    verify: bool = True
    #: Candidates (objects) verified per query.
    verify_top: int = Field(default=10, ge=1, le=100)
    #: Candidate regions searched separately, for photos of several objects (0 = off).
    max_regions: int = Field(default=4, ge=0, le=16)
    #: Confidence (one minus the chance of that many matching points between unrelated
    #: photos) at or above which a verified candidate is reported as a match; default from
    #: models/calibration.json.
    confidence_threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    #: Similarity at or above which a candidate without geometric proof is reported as a
    #: lead ("similar, not verified"); default from models/calibration.json.
    lead_similarity: float | None = Field(default=None, ge=-1.0, le=1.0)
    #: Local-descriptor retrieval (vote and verify over every catalogue photo's keypoints)
    #: beside the CNN's candidates: finds the small, tilted objects of a seizure photo.
    local_retrieval: bool = True

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        # A left-over ARTMATCH_MATCH__THRESHOLD must not be ignored silently: it was the
        # similarity threshold, and a deployment relying on it would match differently.
        if isinstance(data, dict) and "threshold" in data:
            raise ValueError(
                "match.threshold was renamed to match.similarity_threshold "
                "(ARTMATCH_MATCH__SIMILARITY_THRESHOLD)"
            )
        return data


class AlertSettings(BaseModel):
    #: Seconds a webhook POST may take (connect and answer) before it is given up.
    webhook_timeout_s: float = Field(default=5.0, gt=0.0, le=60.0)
    #: Let webhooks reach loopback, private and link-local addresses. Off: a webhook URL
    #: set by an account must not make the service probe its own network.
    webhook_allow_private: bool = False
    #: Threads verifying listings in a retroactive re-check.
    recheck_workers: int = Field(default=2, ge=1, le=32)


class ExchangeSettings(BaseModel):
    #: Hosts (``name`` or ``name:port``) whose image URLs a LIDO import or OAI-PMH harvest may
    #: fetch. Empty (default): no URL is fetched, only local files beside a LIDO file, so a
    #: record cannot make the server reach into a network the operator did not choose.
    image_hosts: list[str] = Field(default_factory=list)
    #: Seconds one image download or OAI-PMH page may take, in all.
    timeout_s: float = Field(default=30.0, gt=0.0, le=600.0)
    #: Largest OAI-PMH response page read, in bytes (images are held to max_upload_bytes).
    max_page_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)


class ThreadSettings(BaseModel):
    #: Threads of numpy's BLAS (OpenBLAS) in the service, the worker and the CLI; 0 leaves
    #: the library's default (one per core). One measured faster: two fought torch and
    #: OpenCV for the cores (query p50 163 -> 127 ms, 39 % less CPU; issue 13).
    blas: int = Field(default=1, ge=0, le=256)
    #: Threads of OpenCV's own parallel loops (SIFT); 0 leaves OpenCV's default (one per
    #: core), which measured faster for the query's SIFT (135 vs 220 ms on 2 cores).
    opencv: int = Field(default=0, ge=0, le=256)


class BatchSettings(BaseModel):
    """Batch listing checks (`ingest.batch`): where they run and in what pieces."""

    #: "local": a Dask LocalCluster on this machine (worker processes); "none": in this
    #: process, one listing after another; or a Dask scheduler's address
    #: (``tcp://host:8786``) to run on a cluster whose workers share the database and blobs.
    scheduler: str = Field(default="local", pattern=r"^(local|none|(tcp|tls|ws|wss|inproc)://\S+)$")
    #: Worker processes of the local cluster; 0 = one per CPU core.
    workers: int = Field(default=0, ge=0, le=256)
    #: Listings sent to a worker at once: large enough to keep a worker busy between two
    #: round trips, small enough that an interrupted chunk costs little to redo.
    chunk_size: int = Field(default=16, ge=1, le=1000)
    #: Manifests with fewer listings to check run in-process: starting a cluster (and a
    #: model per worker) costs more than it saves on a handful.
    min_listings: int = Field(default=64, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ARTMATCH_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    #: Where the embedded default keeps its catalogue, photos and index.
    home: Path = Field(default_factory=_default_home)
    storage: StorageSettings = StorageSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    index: IndexSettings = IndexSettings()
    ingest: IngestSettings = IngestSettings()
    match: MatchSettings = MatchSettings()
    alerts: AlertSettings = AlertSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    threads: ThreadSettings = ThreadSettings()
    batch: BatchSettings = BatchSettings()
    #: Largest image accepted, in pixels (width x height); larger is refused as a
    #: decompression bomb.
    max_image_pixels: int = Field(default=90_000_000, ge=1)
    #: Raw raster one decode may hold, in bytes, by the header's size and mode (Pillow keeps
    #: RGB and CMYK as 4 bytes a pixel, 16-bit grey as 2); larger is refused before decoding.
    #: The default fits a full 90-megapixel RGB image.
    max_decode_bytes: int = Field(default=384 * 1024 * 1024, ge=1024 * 1024)
    #: Freed memory, in MB, a process keeps for reuse instead of handing it back to the
    #: system at once (glibc only; 0: the allocator's default). SIFT builds its image pyramid
    #: afresh for every photo: kept, a museum photo's local features took 42 ms instead of 80
    #: (`kernel.memory`, issue 13).
    keep_freed_mb: int = Field(default=256, ge=0, le=2047)
    #: Image decodes running at once in one process (service, worker or CLI); more wait.
    max_concurrent_decodes: int = Field(default=2, ge=1, le=64)
    #: Largest upload accepted, in bytes.
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    #: Days a photo searched with is kept after its latest search (for the evidence pictures);
    #: `artmatch prune-queries` deletes older ones. 0 keeps them all.
    query_retention_days: int = Field(default=365, ge=0)
    #: The Ed25519 private key (PEM) that signs match reports and due-diligence receipts;
    #: default: <home>/report-signing-key.pem, made on first use (mode 0600).
    report_key_path: Path | None = None

    @property
    def blob_path(self) -> Path:
        return self.storage.path or self.home / "blobs"

    @property
    def report_key_file(self) -> Path:
        return self.report_key_path or self.home / "report-signing-key.pem"

    @property
    def model_path(self) -> Path:
        return self.embedder.model_dir or self.home / "models"

    @property
    def index_path(self) -> Path:
        return self.index.path or self.home / "index"

    @property
    def database_url(self) -> str:
        return self.storage.database_url or f"sqlite:///{self.home / 'catalogue.sqlite3'}"


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARTMATCH_WEB_", env_file=".env", extra="ignore")

    #: Largest request body accepted (all files of an upload together), in bytes; larger is
    #: refused with 413 before it is read. Single files are also held to
    #: ``ARTMATCH_MAX_UPLOAD_BYTES``.
    max_request_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    #: Files accepted in one photo upload.
    max_files: int = Field(default=20, ge=1, le=500)
    #: Lifetime of a browser login, in hours.
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    #: Send the session cookie over HTTPS only; set true behind TLS.
    secure_cookies: bool = False
    #: Strict-Transport-Security max-age in seconds; 0 (default) sends no such header. Set it
    #: (e.g. 31536000) only when the service is reached over HTTPS alone.
    hsts_seconds: int = Field(default=0, ge=0, le=2 * 365 * 24 * 3600)
    #: Directories an analyst may name a manifest in (server paths); none: uploads only
    #: besides ``<home>/manifests``.
    manifest_roots: list[Path] = Field(default_factory=list)
    #: Batch jobs run at the same time by the service (each in its own thread); 0 leaves
    #: them queued for separate `artmatch worker` processes (docker-compose does this).
    job_workers: int = Field(default=1, ge=0, le=8)
    #: Seconds a running batch job may go without a heartbeat (renewed every third of it)
    #: before another process counts it abandoned and marks it failed.
    job_lease_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    #: Days an uploaded manifest (and its photos) is kept after its job finished;
    #: `artmatch prune-uploads` deletes older ones (the job and its report stay).
    upload_retention_days: int = Field(default=90, ge=1, le=36500)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Tests build their own ``Settings`` instead."""
    return Settings()
