"""Peak memory of decoding three under-limit "bombs" at once, through the service's decode path.

Makes a 16-bit grey PNG of 9000x9999 (a few hundred KB), a 9000x9999 JPEG and a 9000x9999
deflate TIFF, decodes them in three threads at once with the settings' byte budget and limit
on decodes at once (``configure_decoding``, as every process does on start), and prints the
peak resident memory above idle. Run: ``python scripts/bench_decode_memory.py``.

``--search`` measures the whole service instead: the app (real CNN, an empty catalogue in a
temporary home) answers the three files posted at once to ``/api/v1/searches`` by an
investigator, and the peak is of that process while it decodes, embeds and extracts keypoints.
"""

from __future__ import annotations

import io
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernel.settings import Settings  # noqa: E402
from models.images import configure_decoding, decode_image  # noqa: E402

SIZE = (9000, 9999)


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _bombs() -> dict[str, bytes]:
    width, height = SIZE
    ramp = np.linspace(0, 65535, width).astype(np.uint16)
    files = {}
    buf = io.BytesIO()
    Image.fromarray(np.broadcast_to(ramp, (height, width)).copy()).save(buf, "PNG")
    files["png16"] = buf.getvalue()
    colour = Image.linear_gradient("L").resize(SIZE).convert("RGB")
    buf = io.BytesIO()
    colour.save(buf, "JPEG", quality=50)
    files["jpeg"] = buf.getvalue()
    buf = io.BytesIO()
    colour.save(buf, "TIFF", compression="tiff_deflate")
    files["tiff"] = buf.getvalue()
    del colour
    return files


def _peak_while(work: list[threading.Thread]) -> tuple[float, float, float]:
    """(idle, peak RSS in MiB, seconds) while the threads of ``work`` run."""
    time.sleep(0.5)
    idle = _rss_mib()
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mib())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    for t in work:
        t.start()
    for t in work:
        t.join()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return idle, peak, seconds


def search_at_once() -> None:
    import tempfile

    from fastapi.testclient import TestClient

    from kernel.enums import Role
    from service.main import create_app
    from service.security import new_token

    files = _bombs()
    with tempfile.TemporaryDirectory(prefix="artmatch-bombs-") as home:
        settings = Settings(home=Path(home))
        app = create_app(settings)
        with TestClient(app) as client:
            while client.get("/api/v1/ready").status_code != 200:
                time.sleep(0.1)
            accounts = app.state.runtime.accounts
            account = accounts.create_account(
                username="inv", password_hash=None, role=Role.INVESTIGATOR, institution=None
            )
            token, digest = new_token()
            accounts.add_token(account_id=account.id, name="bench", token_sha256=digest)
            answers: dict[str, int] = {}

            def post(name: str) -> None:
                r = client.post(
                    "/api/v1/searches",
                    headers={"Authorization": f"Bearer {token}"},
                    files={"file": (f"{name}.img", files[name])},
                )
                answers[name] = r.status_code

            # One search first, so the model's own memory is in the idle figure.
            post("jpeg")
            work = [threading.Thread(target=post, args=(name,)) for name in files]
            idle, peak, seconds = _peak_while(work)
    print(f"answers: {answers}")
    print(f"service: 3 searches at once in {seconds:.1f} s")
    print(f"idle RSS {idle:,.0f} MiB, peak {peak:,.0f} MiB: {peak - idle:,.0f} MiB above idle")


def main() -> None:
    if "--search" in sys.argv[1:]:
        search_at_once()
        return
    settings = Settings()
    configure_decoding(
        max_bytes=settings.max_decode_bytes, max_concurrent=settings.max_concurrent_decodes
    )
    files = _bombs()
    for name, data in files.items():
        print(f"{name}: {len(data) / 1024:,.0f} KB for {SIZE[0]}x{SIZE[1]} pixels")
    results: dict[str, str] = {}

    def decode(name: str) -> None:
        image = decode_image(files[name], source=name, max_pixels=settings.max_image_pixels)
        results[name] = f"{image.original_size} -> {image.size}"

    # The sleep in `_peak_while` lets the allocator give back what making the files took.
    work = [threading.Thread(target=decode, args=(name,)) for name in files]
    idle, peak, seconds = _peak_while(work)
    for name, shape in sorted(results.items()):
        print(f"{name}: {shape}")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"decodes at once: {settings.max_concurrent_decodes}, byte budget "
        f"{settings.max_decode_bytes / 2**20:,.0f} MiB; 3 decodes in {seconds:.1f} s"
    )
    print(f"idle RSS {idle:,.0f} MiB, peak {peak:,.0f} MiB: {peak - idle:,.0f} MiB above idle")
    print(f"(process high-water mark, including making the files: {maxrss:,.0f} MiB)")


if __name__ == "__main__":
    main()
