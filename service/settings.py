"""Settings of the web service only, read from ARTMATCH_WEB_* variables.

The catalogue, model and storage settings stay in `artmatch.config.Settings`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WebSettings"]


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
    #: Directories an analyst may name a manifest in (server paths); none: uploads only
    #: besides ``<home>/manifests``.
    manifest_roots: list[Path] = Field(default_factory=list)
    #: Batch jobs run at the same time by the service (each in its own thread); 0 leaves
    #: them queued for separate `artmatch worker` processes (docker-compose does this).
    job_workers: int = Field(default=1, ge=0, le=8)
