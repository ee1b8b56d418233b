"""Peak memory of decoding three under-limit "bombs" at once, through the service's decode path.

Makes a 16-bit grey PNG of 9000x9999 (a few hundred KB), a 9000x9999 JPEG and a 9000x9999
deflate TIFF, decodes them in three threads at once with the settings' byte budget and limit
on decodes at once (``configure_decoding``, as every process does on start), and prints the
peak resident memory above idle. Run: ``python scripts/bench_decode_memory.py``.
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


def main() -> None:
    settings = Settings()
    configure_decoding(
        max_bytes=settings.max_decode_bytes, max_concurrent=settings.max_concurrent_decodes
    )
    files = _bombs()
    for name, data in files.items():
        print(f"{name}: {len(data) / 1024:,.0f} KB for {SIZE[0]}x{SIZE[1]} pixels")
    # Let the allocator give back what making the files took, then measure idle.
    time.sleep(0.5)
    idle = _rss_mib()
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mib())
            time.sleep(0.005)

    results: dict[str, str] = {}

    def decode(name: str) -> None:
        image = decode_image(files[name], source=name, max_pixels=settings.max_image_pixels)
        results[name] = f"{image.original_size} -> {image.size}"

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=decode, args=(name,)) for name in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
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
