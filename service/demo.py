"""A small generated demo catalogue, so the service can be tried without museum data.

Objects are synthetic 'paintings' (coloured shapes over gradients), one photo each, in two
demo institutions; two are reported stolen. Each run writes the same images, so the demo
catalogue is reproducible. `demo_query_photos` writes photos to search with.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.services import build_services
from ingest.photos import PhotoItem, ingest_photos
from kernel.enums import ObjectStatus, Role
from kernel.schemas import ObjectCreate, StatusChange
from kernel.settings import Settings

__all__ = ["DEMO_ACCOUNTS", "demo_painting", "demo_query_photos", "seed", "seed_accounts"]

_MAKERS = ["A. Verhoeven", "M. Lindqvist", "Unknown", "C. Rossi", "J. Okafor", "E. Duarte"]
_TYPES = ["painting", "icon", "print"]


def demo_painting(seed: int, size: tuple[int, int] = (480, 600)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    t = np.linspace(0, 1, h)[:, None, None]
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = Image.fromarray((c0 * (1 - t) + c1 * t).repeat(w, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        x1, y1 = x0 + rng.uniform(10, w / 2), y0 + rng.uniform(10, h / 2)
        colour = tuple(int(v) for v in rng.uniform(0, 255, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(2, 10)))
    return img


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _snapshot(img: Image.Image, seed: int) -> Image.Image:
    """The painting as an investigator's photo: on a wall, slightly rotated, softer."""
    rng = np.random.default_rng(seed + 500)
    w, h = img.size
    wall = Image.new("RGB", (int(w * 1.3), int(h * 1.25)), (205, 200, 190))
    rotated = img.rotate(float(rng.uniform(-4, 4)), expand=True, fillcolor=(205, 200, 190))
    wall.paste(rotated, (int(w * 0.12), int(h * 0.1)))
    return wall.filter(ImageFilter.GaussianBlur(1.0))


def seed(settings: Settings, *, n_objects: int = 12) -> int:
    services = build_services(settings)
    try:
        if services.catalogue.count_objects():
            return 0
        items = []
        for i in range(n_objects):
            record = ObjectCreate(
                object_id=f"DEMO-{i + 1:03d}",
                institution="Demo Museum" if i % 3 else "Demo Gallery",
                title=f"Composition no. {i + 1}",
                maker=_MAKERS[i % len(_MAKERS)],
                object_type=_TYPES[i % len(_TYPES)],
                date_period=f"{1890 + 7 * i}",
                materials_techniques="oil on canvas",
                measurements="60 x 48 cm",
                description="Generated demo object.",
            )
            data = _jpeg(demo_painting(i))
            items.append(
                PhotoItem(
                    record=record,
                    source=f"demo-{i + 1:03d}.jpg",
                    load=_loader(data),
                    view="front",
                )
            )
        ingest_photos(services, items)
        for object_id, ref in (("DEMO-002", "DEMO-CASE-1"), ("DEMO-005", "DEMO-CASE-2")):
            services.catalogue.set_status(
                object_id,
                StatusChange(status=ObjectStatus.STOLEN, reference=ref, note="demo theft"),
            )
        demo_query_photos(settings.home / "manifests" / "demo")
        return n_objects
    finally:
        services.close()


def _loader(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def demo_query_photos(folder: Path) -> list[Path]:
    """Photos to try the search with: one of a stolen demo object, one of nothing catalogued."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, img in (
        ("stolen-DEMO-002.jpg", _snapshot(demo_painting(1), 1)),
        ("unrelated.jpg", _snapshot(demo_painting(9999), 2)),
    ):
        path = folder / name
        path.write_bytes(_jpeg(img, 85))
        paths.append(path)
    manifest = folder / "listings.csv"
    manifest.write_text(
        "listing_id,image,title,url,seller,price\n"
        "L-1,stolen-DEMO-002.jpg,Old abstract oil,https://auction.example/1,seller-a,400 EUR\n"
        "L-2,unrelated.jpg,Modern print,https://auction.example/2,seller-b,90 EUR\n",
        encoding="utf-8",
    )
    paths.append(manifest)
    return paths


#: Demo accounts: user name -> (role, institution).
DEMO_ACCOUNTS: dict[str, tuple[Role, str | None]] = {
    "demo-admin": (Role.ADMIN, None),
    "demo-registrar": (Role.REGISTRAR, "Demo Museum"),
    "demo-investigator": (Role.INVESTIGATOR, None),
    "demo-analyst": (Role.ANALYST, None),
    "demo-auditor": (Role.AUDITOR, None),
}


def seed_accounts(settings: Settings) -> str | None:
    """One account per role with a freshly generated password (returned, to print once), when
    there are no accounts at all; None otherwise. Never a fixed password."""
    import secrets

    from service.security import hash_password
    from storage.catalogue import create_catalogue
    from storage.catalogue.accounts import Accounts

    accounts = Accounts(create_catalogue(settings.database_url).engine)
    try:
        if accounts.count():
            return None
        password = secrets.token_urlsafe(12)
        digest = hash_password(password)
        for username, (role, institution) in DEMO_ACCOUNTS.items():
            accounts.create_account(
                username=username, password_hash=digest, role=role, institution=institution
            )
        return password
    finally:
        accounts.engine.dispose()
