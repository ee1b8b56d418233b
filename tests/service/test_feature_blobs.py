"""Deleting a photo through the API deletes its local-feature blob with its photo blobs."""

from __future__ import annotations

from storage.features import FEATURES_PREFIX
from tests.service.conftest import Api
from tests.utils.images import jpeg_bytes, textured_object

REG = "reg_a"


def test_photo_delete_removes_its_feature_blob(api: Api) -> None:
    r = api.as_(REG, "POST", "/api/v1/objects", json={"object_id": "A-1"})
    assert r.status_code == 201, r.text
    files = [("files", (f"p{i}.jpg", jpeg_bytes(textured_object(i)), "image/jpeg")) for i in (1, 2)]
    r = api.as_(REG, "POST", "/api/v1/objects/A-1/photos", files=files, data={"view": "front"})
    assert [o["outcome"] for o in r.json()] == ["added", "added"], r.text
    services = api.client.app.state.runtime.services  # type: ignore[attr-defined]
    refs = dict(services.catalogue.feature_refs())
    assert len(refs) == 2 and all(services.blobs.exists(k) for k in refs.values())

    photo_id = r.json()[0]["photo"]["id"]
    assert api.as_(REG, "DELETE", f"/api/v1/photos/{photo_id}").status_code == 200
    assert not services.blobs.exists(refs[photo_id])
    assert sorted(services.blobs.keys(FEATURES_PREFIX)) == [
        v for k, v in refs.items() if k != photo_id
    ]

    assert api.as_(REG, "DELETE", "/api/v1/objects/A-1").status_code == 200
    assert list(services.blobs.keys(FEATURES_PREFIX)) == []
