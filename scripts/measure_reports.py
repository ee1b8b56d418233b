"""Report generation time: a logged search with one verified match, its signed HTML and PDF,
median of 10 (fake embedder: the embedder is not part of making a report).

    python scripts/measure_reports.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evidence import query_blob_key  # noqa: E402
from engine.reports import (  # noqa: E402  # noqa: E402
    build_report,
    load_signing_key,
    render_html,
    render_pdf,
    search_record,
    verify_document,
)
from engine.search import search  # noqa: E402
from engine.services import build_services  # noqa: E402
from ingest.catalogue_csv import iter_items, read_catalogue_csv  # noqa: E402
from ingest.photos import ingest_photos  # noqa: E402
from kernel.settings import EmbedderSettings, Settings  # noqa: E402
from models.embedders import FakeEmbedder  # noqa: E402
from models.images import decode_image  # noqa: E402
from storage.catalogue.search_log import SearchLog  # noqa: E402
from tests.utils.catalogue import write_catalogue  # noqa: E402
from tests.utils.images import jpeg_bytes, photographed, textured_object  # noqa: E402


def main() -> None:
    root = Path(tempfile.mkdtemp())
    (root / "home").mkdir()
    settings = Settings(home=root / "home", embedder=EmbedderSettings(name="fake"))
    services = build_services(settings, embedder=FakeEmbedder())
    ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(root / "c", 20))))
    data = jpeg_bytes(photographed(textured_object(3), seed=5))
    query = decode_image(data)
    result = search(services, query, top_k=10)
    services.blobs.put(query_blob_key(query.sha256), data, content_type="image/jpeg")
    log = SearchLog(services.catalogue.engine)
    search_id = log.log_search(
        username="bench",
        account_id=None,
        case_reference=None,
        query_sha256=query.sha256,
        filters={},
        matches=len(result.matches),
        top_object_id=None,
        top_similarity=None,
        record=search_record(services, result),
    )
    key = load_signing_key(root / "key.pem")
    html_s, pdf_s, verify_s = [], [], []
    for _ in range(10):
        t0 = time.perf_counter()
        report = render_html(build_report(services, log, [search_id], generated_by="b"), key)
        t1 = time.perf_counter()
        pdf = render_pdf(report.html)
        t2 = time.perf_counter()
        assert verify_document(pdf, key.public_key()).valid
        t3 = time.perf_counter()
        html_s.append(t1 - t0)
        pdf_s.append(t2 - t1)
        verify_s.append(t3 - t2)
    record = log.search_record(search_id)
    assert record is not None
    shown = [h.decision for h in record.hits if h.decision != "none"]
    print(
        f"query {query.size[0]}x{query.size[1]}, hits shown: {shown}, PDF {len(pdf) / 1024:.0f} KiB"
    )
    print(f"signed HTML (content, evidence, signature): median {statistics.median(html_s):.3f} s")
    print(f"PDF rendering (WeasyPrint): median {statistics.median(pdf_s):.3f} s")
    print(f"verify PDF: median {statistics.median(verify_s):.3f} s")


if __name__ == "__main__":
    main()
