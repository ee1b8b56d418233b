"""OAI-PMH harvest: paging by resumption token, errors, and a real endpoint on loopback
harvested twice without duplicates."""

from __future__ import annotations

import urllib.parse

import pytest

from engine.services import Services
from ingest.export import select_objects
from ingest.lido import RecordError
from ingest.oaipmh import harvest, list_records, load_state, state_key
from ingest.photos import Outcome, ingest_photos
from kernel.errors import InvalidInput
from tests.utils.images import jpeg_bytes, textured_object
from tests.utils.lido import OaiServer, lido_record, oai_catalogue, oai_page


def _pages(pages: list[bytes]):  # type: ignore[no-untyped-def]
    asked: list[dict[str, str]] = []

    def get(url: str) -> bytes:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        asked.append(query)
        token = query.get("resumptionToken")
        return pages[int(token[1:]) if token else 0]

    return get, asked


def test_pages_follow_resumption_tokens() -> None:
    rec = lido_record("a", links=["http://h/a.jpg"])
    get, asked = _pages(
        [
            oai_page([("oai:1", "2026-01-01", rec)], token="t1"),
            oai_page([("oai:2", "2026-01-03", None), ("oai:3", "2026-01-02", "")], token=None),
        ]
    )
    pages = list(list_records("http://h/oai", get=get, set_spec="icons", from_date="2025-12-31"))
    assert [p.number for p in pages] == [1, 2]
    assert asked[0] == {
        "verb": "ListRecords",
        "metadataPrefix": "lido",
        "set": "icons",
        "from": "2025-12-31",
    }
    assert asked[1] == {"verb": "ListRecords", "resumptionToken": "t1"}
    assert pages[1].deleted == ["oai:2"]
    [(ident, _, error)] = pages[1].records
    assert ident == "oai:3" and isinstance(error, RecordError) and "no LIDO" in error.message
    assert max(pages[0].datestamps + pages[1].datestamps) == "2026-01-03"


def test_no_records_is_not_an_error_but_other_oai_errors_are() -> None:
    def reply(code: str) -> bytes:
        return (
            '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
            f'<error code="{code}">because</error></OAI-PMH>'
        ).encode()

    assert list(list_records("http://h", get=lambda _: reply("noRecordsMatch"))) == []
    with pytest.raises(InvalidInput, match="cannotDisseminateFormat: because"):
        list(list_records("http://h", get=lambda _: reply("cannotDisseminateFormat")))
    with pytest.raises(InvalidInput, match="not an OAI-PMH response"):
        list(list_records("http://h", get=lambda _: b"<html/>"))
    with pytest.raises(InvalidInput, match="not well-formed"):
        list(list_records("http://h", get=lambda _: b"<OAI-PMH"))


@pytest.mark.integration
def test_harvest_twice_gives_the_same_catalogue(services: Services) -> None:
    settings = services.settings
    with OaiServer() as server:
        oai_catalogue(server, n=7, per_page=3, image=lambda i: jpeg_bytes(textured_object(i)))
        clean = server.pages[0]
        # a record whose image lies on a host the operator did not allow
        foreign = lido_record("foreign", links=["http://elsewhere.example/x.jpg"])
        server.pages[0] = server.pages[0].replace(
            b"</ListRecords>",
            b"<record><header><identifier>oai:foreign</identifier><datestamp>2026-01-01"
            b"</datestamp></header><metadata>" + foreign.encode() + b"</metadata></record>"
            b"</ListRecords>",
        )
        url = server.base + "/oai"
        settings.exchange.image_hosts = ["127.0.0.1"]

        first = harvest(settings, ingest=lambda items: ingest_photos(services, items), url=url)
        assert (first.pages, first.records) == (3, 8)
        [error] = first.errors
        assert error.record == "foreign" and error.message.startswith("oai:foreign record")
        assert "host not allowed" in error.message
        assert sum(o.outcome is Outcome.ADDED for o in first.outcomes) == 7
        catalogue = {o.object_id: o for o in select_objects(services.catalogue.engine)}
        assert sorted(catalogue) == sorted(f"rec-{i}" for i in range(7))
        assert catalogue["rec-3"].title == "Object 3"

        # the failed record holds the next `from` back to its own datestamp
        assert load_state(settings.home)[state_key(url, None)] == "2026-01-01"
        second = harvest(settings, ingest=lambda items: ingest_photos(services, items), url=url)
        assert server.requests[-3]["from"] == "2026-01-01"
        assert {o.outcome for o in second.outcomes} == {Outcome.DUPLICATE}
        again = {o.object_id: o for o in select_objects(services.catalogue.engine)}
        assert again == catalogue
        assert services.catalogue.count_objects() == 7

        # with every record imported, the newest datestamp is the next `from`
        server.pages[0] = clean
        third = harvest(settings, ingest=lambda items: ingest_photos(services, items), url=url)
        assert not third.errors
        assert load_state(settings.home)[state_key(url, None)] == "2026-01-07"
