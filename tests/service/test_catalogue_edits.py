"""Issue 12, pages that hold up: status records keep the police reference and refuse future
dates, an unknown institution is asked about, uploads label each photo, refuse non-images and
never leave a new object without photos."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from kernel.errors import Conflict
from service.deps import Principal
from service.operations import catalogue as ops
from service.schemas import ObjectIn
from tests.service.conftest import PASSWORD, Api
from tests.utils.images import jpeg_bytes, png_bytes, textured_object

REG, INV, ADMIN = "reg_a", "inv", "admin"


def _object(api: Api, object_id: str = "A-1") -> None:
    r = api.as_(REG, "POST", "/api/v1/objects", json={"object_id": object_id})
    assert r.status_code == 201, r.text


def _status(api: Api, object_id: str = "A-1", **body: str):  # type: ignore[no-untyped-def]
    return api.as_(REG, "POST", f"/api/v1/objects/{object_id}/status", json=body)


def test_re_recording_a_status_keeps_the_police_reference(api: Api) -> None:
    _object(api)
    r = _status(api, status="stolen", date="2024-03-01", reference="POL-1")
    assert r.json()["loss_reference"] == "POL-1"
    # a correction of the note only: the reference and the loss date stay
    r = _status(api, status="stolen", note="seen at a fair")
    assert r.status_code == 200, r.text
    assert r.json()["loss_reference"] == "POL-1"
    assert r.json()["loss_date"] == "2024-03-01"
    history = api.as_(INV, "GET", "/api/v1/objects/A-1").json()["history"]
    assert [h["reference"] for h in history] == ["POL-1", "POL-1"]
    # a new reference replaces it
    r = _status(api, status="missing", reference="INTERPOL-7")
    assert r.json()["loss_reference"] == "INTERPOL-7"


def test_a_status_dated_in_the_future_is_refused(api: Api) -> None:
    _object(api)
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    r = _status(api, status="stolen", date=later, reference="POL-1")
    assert r.status_code == 422 and "future" in r.json()["message"]
    assert api.as_(INV, "GET", "/api/v1/objects/A-1").json()["status"] == "in_collection"
    today = dt.date.today().isoformat()
    assert _status(api, status="stolen", date=today).status_code == 200


def test_an_unknown_institution_is_asked_about_before_it_is_created(api: Api) -> None:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    account = runtime.accounts.by_username("reg_a")
    # A registrar's account naming a museum the catalogue does not know (a typo in the
    # account, or the institution renamed): asked, never quietly created.
    typo = Principal(account=dataclasses.replace(account, institution="Musem A"))
    with pytest.raises(Conflict, match="Institution 'Musem A' does not exist yet. Create it?"):
        ops.create_object(runtime, typo, ObjectIn(object_id="X-1"))
    assert "Musem A" not in ops.institution_names(runtime)
    ops.create_object(runtime, typo, ObjectIn(object_id="X-1", create_institution=True))
    assert "Musem A" in ops.institution_names(runtime)
    # the registrar's own, existing museum needs no question
    r = api.as_(
        REG, "POST", "/api/v1/objects", json={"object_id": "X-2", "institution": "Museum A"}
    )
    assert r.status_code == 201, r.text


def _files(*images: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]


def test_each_photo_gets_its_own_view_label(api: Api) -> None:
    _object(api)
    r = api.as_(
        REG,
        "POST",
        "/api/v1/objects/A-1/photos",
        files=_files(jpeg_bytes(textured_object(1)), jpeg_bytes(textured_object(2))),
        data={"views": ["front", "back"]},
    )
    assert r.status_code == 201, r.text
    assert [o["photo"]["view"] for o in r.json()] == ["front", "back"]
    r = api.as_(
        REG,
        "POST",
        "/api/v1/objects/A-1/photos",
        files=_files(jpeg_bytes(textured_object(3))),
        data={"views": ["a", "b"]},
    )
    assert r.status_code == 422 and "view labels" in r.json()["message"]


def test_a_non_image_is_refused_and_named_the_photos_kept(api: Api) -> None:
    _object(api)
    url = "/api/v1/objects/A-1/photos"
    pdf = ("files", ("report.pdf", b"%PDF-1.7 not a photo", "application/octet-stream"))
    # alone: the upload is refused, nothing stored
    r = api.as_(REG, "POST", url, files=[pdf])
    assert r.status_code == 422
    assert "report.pdf: not an image" in r.json()["message"]
    assert api.as_(INV, "GET", "/api/v1/objects/A-1").json()["photo_count"] == 0
    # among photos of an existing object: the photo is kept, the PDF reported by name
    ok = ("files", ("ok.jpg", jpeg_bytes(textured_object(1)), "image/jpeg"))
    r = api.as_(REG, "POST", url, files=[pdf, ok], data={"views": ["x", "front"]})
    assert r.status_code == 201, r.text
    assert [(o["filename"], o["outcome"]) for o in r.json()] == [
        ("report.pdf", "error"),
        ("ok.jpg", "added"),
    ]
    assert "not an image" in r.json()[0]["message"]
    assert r.json()[1]["photo"]["view"] == "front"
    # for a new object: refused before anything is stored
    r = api.as_(
        REG,
        "POST",
        "/api/v1/objects/with-photos",
        files=[pdf, ("files", ("new.jpg", jpeg_bytes(textured_object(2)), "image/jpeg"))],
        data={"record": json.dumps({"object_id": "N-9"})},
    )
    assert r.status_code == 422 and "report.pdf" in r.json()["message"]
    assert api.as_(INV, "GET", "/api/v1/objects/N-9").status_code == 404


def _create(api: Api, record: dict[str, str], *images: bytes, views: list[str] | None = None):  # type: ignore[no-untyped-def]
    return api.as_(
        REG,
        "POST",
        "/api/v1/objects/with-photos",
        files=_files(*images),
        data={"record": json.dumps(record), "views": views or []},
    )


def test_a_new_object_and_its_photos_are_saved_together(api: Api) -> None:
    r = _create(
        api,
        {"object_id": "N-1", "title": "Ikona", "status": "stolen"},
        png_bytes(textured_object(4)),
        jpeg_bytes(textured_object(5)),
        views=["front", "detail"],
    )
    assert r.status_code == 201, r.text
    obj = api.as_(INV, "GET", "/api/v1/objects/N-1").json()
    assert obj["photo_count"] == 2 and obj["status"] == "stolen"
    assert sorted(p["view"] for p in obj["photos"]) == ["detail", "front"]


def test_a_new_object_whose_photos_fail_is_not_left_without_photos(api: Api) -> None:
    # a good photo and a broken one: all or nothing for a new object
    r = _create(api, {"object_id": "N-2"}, png_bytes(textured_object(6)), b"\xff\xd8\xff broken")
    assert r.status_code == 422, r.text
    assert "N-2" in r.json()["message"] and "p1.jpg" in r.json()["message"]
    assert api.as_(INV, "GET", "/api/v1/objects/N-2").status_code == 404
    # the good photo was not kept either: it can be sent again for a new object
    r = _create(api, {"object_id": "N-2"}, png_bytes(textured_object(6)))
    assert r.status_code == 201, r.text
    # every photo bad
    r = _create(api, {"object_id": "N-3"}, b"\xff\xd8\xff broken")
    assert r.status_code == 422
    assert api.as_(INV, "GET", "/api/v1/objects/N-3").status_code == 404


def test_a_new_object_with_a_bad_record_is_a_json_error(api: Api) -> None:
    r = _create(api, {"title": "no id"}, png_bytes(textured_object(7)))
    assert r.status_code == 422 and "object_id" in r.json()["message"]
    r = _create(
        api, {"object_id": "N-4", "institution": "Museum Zz"}, png_bytes(textured_object(7))
    )
    assert r.status_code in (403, 409)


def test_the_status_form_shows_a_future_date_as_its_error(api: Api) -> None:
    _object(api)
    r = api.client.post("/login", data={"username": REG, "password": PASSWORD})
    assert r.status_code == 200
    page = api.client.get("/objects/A-1").text
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    later = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    r = api.client.post(
        "/objects/A-1/status",
        data={"csrf_token": csrf, "status": "stolen", "date": later, "reference": "P-1"},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 422
    assert 'id="status-error"' in r.text and "in the future" in r.text
    assert 'id="status-form"' in r.text  # the form, with the page, to correct the date
