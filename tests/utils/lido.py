"""LIDO records and OAI-PMH pages for exchange tests, built in code (no committed files)."""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections.abc import Callable
from xml.sax.saxutils import escape

__all__ = ["OaiServer", "lido_record", "lido_wrap", "oai_catalogue", "oai_page"]

LIDO = "http://www.lido-schema.org"


def lido_record(
    rec_id: str | None,
    *,
    links: list[str],
    title: str = "Icon",
    institution: str = "National Museum",
    maker: str = "Unknown master",
    prefix: str = "lido:",
) -> str:
    p = prefix
    rec = f"<{p}lidoRecID {p}type='local'>{escape(rec_id)}</{p}lidoRecID>" if rec_id else ""
    resources = "".join(
        f"<{p}resourceSet><{p}resourceRepresentation {p}type='image_thumb'>"
        f"<{p}linkResource>thumb-{escape(link)}</{p}linkResource></{p}resourceRepresentation>"
        f"<{p}resourceRepresentation {p}type='image_master'>"
        f"<{p}linkResource>{escape(link)}</{p}linkResource></{p}resourceRepresentation>"
        f"<{p}resourcePerspective><{p}term>front</{p}term></{p}resourcePerspective>"
        f"</{p}resourceSet>"
        for link in links
    )
    return f"""<{p}lido>{rec}
  <{p}descriptiveMetadata xml:lang="bg">
    <{p}objectClassificationWrap><{p}objectWorkTypeWrap><{p}objectWorkType>
      <{p}term>icon</{p}term></{p}objectWorkType></{p}objectWorkTypeWrap>
    </{p}objectClassificationWrap>
    <{p}objectIdentificationWrap>
      <{p}titleWrap><{p}titleSet><{p}appellationValue>{escape(title)}</{p}appellationValue>
      </{p}titleSet></{p}titleWrap>
      <{p}inscriptionsWrap><{p}inscriptions><{p}inscriptionTranscription>IC XC
      </{p}inscriptionTranscription></{p}inscriptions></{p}inscriptionsWrap>
      <{p}repositoryWrap><{p}repositorySet {p}type="current"><{p}repositoryName>
        <{p}legalBodyName><{p}appellationValue>{escape(institution)}</{p}appellationValue>
        </{p}legalBodyName></{p}repositoryName>
        <{p}workID {p}type="inventory number">INV-{escape(rec_id or "x")}</{p}workID>
      </{p}repositorySet></{p}repositoryWrap>
      <{p}objectDescriptionWrap>
        <{p}objectDescriptionSet>
          <{p}descriptiveNoteValue>Tempera on wood</{p}descriptiveNoteValue>
        </{p}objectDescriptionSet>
        <{p}objectDescriptionSet {p}type="distinguishing features">
          <{p}descriptiveNoteValue>Crack lower left</{p}descriptiveNoteValue>
        </{p}objectDescriptionSet>
      </{p}objectDescriptionWrap>
      <{p}objectMeasurementsWrap><{p}objectMeasurementsSet>
        <{p}displayObjectMeasurements>32 x 24 cm</{p}displayObjectMeasurements>
      </{p}objectMeasurementsSet></{p}objectMeasurementsWrap>
    </{p}objectIdentificationWrap>
    <{p}eventWrap>
      <{p}eventSet><{p}event><{p}eventType><{p}term>Acquisition</{p}term></{p}eventType>
        <{p}eventActor><{p}displayActorInRole>A dealer</{p}displayActorInRole></{p}eventActor>
      </{p}event></{p}eventSet>
      <{p}eventSet><{p}event><{p}eventType><{p}term>Production</{p}term></{p}eventType>
        <{p}eventActor><{p}displayActorInRole>{escape(maker)}</{p}displayActorInRole></{p}eventActor>
        <{p}eventDate><{p}displayDate>17th century</{p}displayDate></{p}eventDate>
        <{p}eventMaterialsTech>
          <{p}displayMaterialsTech>tempera, gold leaf</{p}displayMaterialsTech>
        </{p}eventMaterialsTech>
      </{p}event></{p}eventSet>
    </{p}eventWrap>
    <{p}objectRelationWrap><{p}subjectWrap><{p}subjectSet>
      <{p}displaySubject>Saint Nicholas</{p}displaySubject></{p}subjectSet></{p}subjectWrap>
    </{p}objectRelationWrap>
  </{p}descriptiveMetadata>
  <{p}administrativeMetadata xml:lang="en">
    <{p}recordWrap><{p}recordID {p}type="local">{escape(rec_id or "x")}</{p}recordID>
      <{p}recordType><{p}term>item</{p}term></{p}recordType>
      <{p}recordSource><{p}legalBodyName><{p}appellationValue>Other</{p}appellationValue>
      </{p}legalBodyName></{p}recordSource></{p}recordWrap>
    <{p}resourceWrap>{resources}</{p}resourceWrap>
  </{p}administrativeMetadata>
</{p}lido>"""


def lido_wrap(records: list[str]) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<lido:lidoWrap xmlns:lido="{LIDO}">\n'
        + "\n".join(records)
        + "\n</lido:lidoWrap>\n"
    )


def oai_page(records: list[tuple[str, str, str | None]], *, token: str | None) -> bytes:
    """A ListRecords page: (identifier, datestamp, lido:lido XML or None for deleted)."""
    body = []
    for ident, stamp, lido in records:
        status = "" if lido is not None else ' status="deleted"'
        metadata = f"<metadata>{lido}</metadata>" if lido is not None else ""
        body.append(
            f"<record><header{status}><identifier>{ident}</identifier>"
            f"<datestamp>{stamp}</datestamp></header>{metadata}</record>"
        )
    resumption = f"<resumptionToken>{token}</resumptionToken>" if token else "<resumptionToken/>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
        f'xmlns:lido="{LIDO}"><responseDate>2026-01-01T00:00:00Z</responseDate>'
        f"<ListRecords>{''.join(body)}{resumption}</ListRecords></OAI-PMH>"
    ).encode()


class OaiServer:
    """A real OAI-PMH endpoint on loopback, in a thread: ``pages[0]`` answers the first
    ``ListRecords``, ``pages[i]`` the token ``"t{i}"``; ``files`` are served under their path.
    ``requests`` keeps every query received."""

    def __init__(self, *, pages: list[bytes] | None = None, files: dict[str, bytes] | None = None):
        self.pages = pages or []
        self.files = files or {}
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                parts = urllib.parse.urlsplit(self.path)
                if parts.path in server.files:
                    self._send(server.files[parts.path], "image/jpeg")
                    return
                query = dict(urllib.parse.parse_qsl(parts.query))
                server.requests.append(query)
                token = query.get("resumptionToken")
                index = int(token[1:]) if token else 0
                if index >= len(server.pages):
                    self.send_error(404)
                    return
                self._send(server.pages[index], "text/xml")

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> OaiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def oai_catalogue(
    server: OaiServer, *, n: int, per_page: int, image: Callable[[int], bytes]
) -> None:
    """Fill ``server`` with ``n`` LIDO records (one photo each, served by it) in pages."""
    records = []
    for i in range(n):
        path = f"/img/{i}.jpg"
        server.files[path] = image(i)
        lido = lido_record(f"rec-{i}", links=[server.base + path], title=f"Object {i}")
        records.append((f"oai:test:{i}", f"2026-01-{1 + i % 28:02d}", lido))
    chunks = [records[i : i + per_page] for i in range(0, n, per_page)]
    server.pages = [
        oai_page(chunk, token=f"t{k + 1}" if k + 1 < len(chunks) else None)
        for k, chunk in enumerate(chunks)
    ]
