"""The ONNX Runtime twin of the torch embedder: the same vectors, the export cached and keyed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kernel.settings import EmbedderSettings, Settings
from models.embedders import create_embedder, onnx_export
from models.embedders.onnx_export import ensure_onnx_model, export_key
from tests.models.test_embedders import GOLDEN
from tests.utils.images import photographed, textured_object


def test_a_cached_export_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_export(path: Path, *, gem_p: float) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "_export", no_export)
    cached = tmp_path / f"efficientnet-lite0-gem3-{export_key(gem_p=3.0)}.onnx"
    cached.write_bytes(b"graph")
    assert ensure_onnx_model(tmp_path, gem_p=3.0) == cached


def test_the_export_key_follows_the_weights_and_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    key = export_key(gem_p=3.0)
    assert export_key(gem_p=4.0) != key
    monkeypatch.setattr(onnx_export, "_version", lambda package: "0.0-other")
    assert export_key(gem_p=3.0) != key


def test_a_failed_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def half_export(path: Path, *, gem_p: float) -> None:
        path.write_bytes(b"half a graph")
        raise RuntimeError("out of disk")

    monkeypatch.setattr(onnx_export, "_export", half_export)
    with pytest.raises(RuntimeError):
        ensure_onnx_model(tmp_path, gem_p=3.0)
    assert list(tmp_path.iterdir()) == []


def test_the_runtime_setting_is_closed() -> None:
    with pytest.raises(ValueError, match="onnx"):
        EmbedderSettings(runtime="tensorflow")  # type: ignore[arg-type]


def test_the_model_cache_lives_under_the_home_unless_set(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).model_path == tmp_path / "models"
    custom = EmbedderSettings(model_dir=tmp_path / "m")
    assert Settings(home=tmp_path, embedder=custom).model_path == tmp_path / "m"


@pytest.fixture(scope="module")
def onnx_and_torch(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    model_dir = tmp_path_factory.mktemp("models")
    onnx = create_embedder(EmbedderSettings(runtime="onnx", model_dir=model_dir))
    torch = create_embedder(EmbedderSettings(runtime="torch"))
    return onnx, torch


@pytest.mark.slow
def test_onnx_embedder_matches_golden_vector_and_torch(onnx_and_torch) -> None:  # type: ignore[no-untyped-def]
    onnx, torch = onnx_and_torch
    assert type(onnx).__name__ == "OnnxEfficientNetLite0Embedder"
    assert (onnx.name, onnx.version, onnx.dim) == (torch.name, torch.version, torch.dim)
    vec = onnx.embed([textured_object(42)])[0]
    np.testing.assert_allclose(vec, np.load(GOLDEN), atol=2e-4)
    np.testing.assert_allclose(vec, torch.embed([textured_object(42)])[0], atol=2e-5)


@pytest.mark.slow
def test_onnx_embedder_takes_every_shape_as_torch_does(onnx_and_torch) -> None:  # type: ignore[no-untyped-def]
    onnx, torch = onnx_and_torch
    rng = np.random.default_rng(0)
    sizes = [(2000, 190), (40, 3000), (67, 99), (333, 517), (1, 1), (320, 400), (320, 400)]
    images = [Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)) for w, h in sizes]
    images.append(photographed(textured_object(5), seed=2))
    got = onnx.embed(images)
    want = torch.embed(images)
    assert got.shape == (len(images), 1280) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.min(np.sum(got * want, axis=1)) > 0.99999
    # The same vector whether a photo comes alone or among others.
    np.testing.assert_allclose(got[5], onnx.embed([images[5]])[0], atol=1e-6)


@pytest.mark.slow
def test_a_pickled_onnx_embedder_opens_the_same_file_and_gives_the_same_vectors(
    onnx_and_torch,  # type: ignore[no-untyped-def]
) -> None:
    import pickle

    onnx, _ = onnx_and_torch
    copy = pickle.loads(pickle.dumps(onnx))
    assert copy.model_path == onnx.model_path and copy.version == onnx.version
    # What an ingest worker receives: a path, not the session (a few hundred bytes).
    assert len(pickle.dumps(onnx)) < 2000
    image = photographed(textured_object(5))
    np.testing.assert_array_equal(copy.embed([image]), onnx.embed([image]))
