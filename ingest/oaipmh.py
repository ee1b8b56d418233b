"""Harvesting LIDO records over OAI-PMH 2.0 (``ListRecords``, ``metadataPrefix=lido``).

Pages are followed through their resumption tokens and ingested one at a time, so memory
stays bounded by a page. A harvest is re-runnable: photos already stored (same bytes) are
duplicates, objects are updated in place. After a harvest that reached the last page, the
newest record datestamp is kept in ``<home>/oai-harvest.json`` (per endpoint and set) and
used as ``from`` next time, so that a re-run asks only for records changed since (``from`` is
inclusive: the records of that very datestamp come again and are recognised as duplicates).
Deleted records (``status="deleted"``) are reported and left alone: deleting catalogue
objects is a registrar's decision.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from ingest.lido import RecordError, UrlFetcher, fetch_url, parse_record
from ingest.photos import IngestOutcome, Outcome, PhotoItem
from kernel.errors import InvalidInput
from kernel.settings import Settings

__all__ = [
    "HarvestResult",
    "OaiPage",
    "harvest",
    "list_records",
    "load_state",
    "save_state",
    "state_key",
]

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
NS = {"oai": OAI_NS}
STATE_FILE = "oai-harvest.json"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
#: Pages followed at most: a server that hands out tokens forever must not keep us forever.
MAX_PAGES = 100_000


@dataclass
class OaiPage:
    number: int
    #: (identifier, datestamp, its lido:lido or an error)
    records: list[tuple[str, str, etree._Element | RecordError]]
    datestamps: list[str]
    deleted: list[str]


@dataclass
class HarvestResult:
    pages: int = 0
    records: int = 0
    deleted: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    outcomes: list[IngestOutcome] = field(default_factory=list)
    #: The newest record datestamp seen (the next harvest's ``from``).
    latest: str | None = None
    from_date: str | None = None


def state_key(url: str, set_spec: str | None) -> str:
    return f"{url}#{set_spec or ''}"


def load_state(home: Path) -> dict[str, str]:
    path = home / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: unreadable harvest state ({exc}); delete it") from None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save_state(home: Path, state: dict[str, str]) -> None:
    path = home / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves half a state file


def _request_url(base: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def list_records(
    url: str,
    *,
    get: Callable[[str], bytes],
    set_spec: str | None = None,
    from_date: str | None = None,
) -> Iterator[OaiPage]:
    """The pages of ``ListRecords``; each record as (identifier, its lido:lido or an error)."""
    params = {"verb": "ListRecords", "metadataPrefix": "lido"}
    if set_spec:
        params["set"] = set_spec
    if from_date:
        params["from"] = from_date
    for number in range(1, MAX_PAGES + 1):
        data = get(_request_url(url, params))
        try:
            root = etree.fromstring(data, parser=_PARSER)
        except etree.XMLSyntaxError as exc:
            raise InvalidInput(f"{url}: page {number} is not well-formed XML ({exc.msg})") from None
        if root.tag != f"{{{OAI_NS}}}OAI-PMH":
            raise InvalidInput(f"{url}: not an OAI-PMH response (page {number})")
        error = root.find("oai:error", NS)
        if error is not None:
            code = error.get("code", "")
            if code == "noRecordsMatch":
                return
            raise InvalidInput(f"{url}: OAI-PMH error {code}: {(error.text or '').strip()}")
        page = OaiPage(number, [], [], [])
        for rec in root.iterfind("oai:ListRecords/oai:record", NS):
            header = rec.find("oai:header", NS)
            ident = (header.findtext("oai:identifier", "", NS) if header is not None else "") or (
                f"page {number} record {len(page.records) + 1}"
            )
            ident = ident.strip()
            stamp = (header.findtext("oai:datestamp", "", NS) if header is not None else "") or ""
            if stamp.strip():
                page.datestamps.append(stamp.strip())
            if header is not None and header.get("status") == "deleted":
                page.deleted.append(ident)
                continue
            lido = rec.find(".//{http://www.lido-schema.org}lido")
            if lido is None:
                error = RecordError(ident, f"{ident}: no LIDO metadata")
                page.records.append((ident, stamp.strip(), error))
            else:
                page.records.append((ident, stamp.strip(), lido))
        yield page
        token = root.findtext("oai:ListRecords/oai:resumptionToken", "", NS).strip()
        if not token:
            return
        params = {"verb": "ListRecords", "resumptionToken": token}
    raise InvalidInput(f"{url}: more than {MAX_PAGES} pages; stopped")


def harvest(
    settings: Settings,
    *,
    ingest: Callable[[list[PhotoItem]], list[IngestOutcome]],
    url: str,
    set_spec: str | None = None,
    from_date: str | None = None,
    institution: str = "default",
    on_page: Callable[[OaiPage, HarvestResult], None] | None = None,
) -> HarvestResult:
    """Harvest ``url`` and ``ingest`` each page's photos; ``from_date`` None: since the last
    complete harvest of this endpoint and set (everything the first time)."""
    key = state_key(url, set_spec)
    state = load_state(settings.home) if settings.home.is_dir() else {}
    result = HarvestResult(from_date=from_date or state.get(key))
    exchange = settings.exchange
    fetcher = UrlFetcher.from_settings(exchange, max_bytes=settings.max_upload_bytes)

    def get(page_url: str) -> bytes:
        # The endpoint is the operator's own choice, so any host is allowed for the pages.
        try:
            return fetch_url(
                page_url,
                allows=lambda u: urllib.parse.urlsplit(u).scheme in ("http", "https"),
                timeout_s=exchange.timeout_s,
                limit=exchange.max_page_bytes,
            )
        except OSError as exc:
            raise InvalidInput(f"{url}: {exc}") from None

    failed: list[str] = []
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise InvalidInput(f"{url}: not an http(s) URL")
    for page in list_records(url, get=get, set_spec=set_spec, from_date=result.from_date):
        result.pages += 1
        result.deleted += page.deleted
        items: list[PhotoItem] = []
        stamps: dict[str, str] = {}
        for ident, stamp, rec in page.records:
            result.records += 1
            parsed = (
                rec
                if isinstance(rec, RecordError)
                else parse_record(
                    rec, source=ident, base=None, fetcher=fetcher, institution=institution
                )
            )
            if isinstance(parsed, RecordError):
                result.errors.append(parsed)
                failed.append(stamp)
            else:
                items += parsed
                stamps[parsed[0].record.object_id] = stamp
        if items:
            outcomes = ingest(items)
            result.outcomes += outcomes
            failed += [
                stamps.get(o.object_id or "", "") for o in outcomes if o.outcome is Outcome.ERROR
            ]
        for stamp in page.datestamps:
            # ISO 8601 datestamps of one granularity order as strings.
            if result.latest is None or stamp > result.latest:
                result.latest = stamp
        if on_page:
            on_page(page, result)
    # A record that failed comes again next time: the saved ``from`` is no later than the
    # earliest failed record's datestamp (a failed record without one: a full harvest).
    if failed:
        result.latest = min(failed) or None
    if result.latest:
        state = load_state(settings.home) if settings.home.is_dir() else {}
        state[key] = result.latest
        settings.home.mkdir(parents=True, exist_ok=True)
        save_state(settings.home, state)
    return result
