"""Embedder registry, and the golden vector that pins the default model's output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kernel.errors import ConfigError
from kernel.settings import EmbedderSettings
from models.embedders import FakeEmbedder, available_embedders, create_embedder
from tests.utils.images import textured_object

GOLDEN = Path(__file__).parent.parent / "data" / "golden_efficientnet_lite0.npy"


def test_unknown_embedder_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder(EmbedderSettings(name="clip-huge"))
    assert "efficientnet-lite0" in str(info.value) and "torchvision:<arch>" in str(info.value)
    assert "fake" in available_embedders()


def test_fake_embedder_is_unit_length_and_deterministic() -> None:
    emb = FakeEmbedder()
    a = emb.embed([textured_object(1), textured_object(2)])
    assert a.shape == (2, emb.dim) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a, emb.embed([textured_object(1), textured_object(2)]))


def test_torchvision_backbone_needs_a_local_weights_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WEIGHTS_PATH"):
        create_embedder(EmbedderSettings(name="torchvision:resnet18"))
    with pytest.raises(ConfigError, match="not found"):
        create_embedder(
            EmbedderSettings(name="torchvision:resnet18", weights_path=tmp_path / "x.pth")
        )


def test_torchvision_backbone_loads_local_weights(tmp_path: Path) -> None:
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), weights)
    emb = create_embedder(
        EmbedderSettings(name="torchvision:mobilenet_v3_small", weights_path=weights)
    )
    vec = emb.embed([textured_object(3)])
    assert vec.shape == (1, emb.dim) and emb.dim == 576
    assert emb.name == "torchvision:mobilenet_v3_small"


@pytest.mark.slow
def test_default_embedder_matches_golden_vector() -> None:
    """A silent change of weights or preprocessing changes this vector; regenerate on purpose
    only (``python -m tests.models.test_embedders``) and say why in the commit. torch is the
    reference; the ONNX runtime's twin is in test_onnx_embedder.py."""
    emb = create_embedder(EmbedderSettings(runtime="torch"))
    vec = emb.embed([textured_object(42)])[0]
    assert emb.dim == 1280 and vec.shape == (1280,)
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(vec, np.load(GOLDEN), atol=2e-4)


@pytest.mark.slow
def test_default_embedder_finds_the_same_object() -> None:
    from tests.utils.images import photographed

    emb = create_embedder(EmbedderSettings())
    cat = emb.embed([textured_object(i) for i in range(4)])
    q = emb.embed([photographed(textured_object(2), seed=5)])[0]
    assert int(np.argmax(cat @ q)) == 2


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    vector = create_embedder(EmbedderSettings(runtime="torch")).embed([textured_object(42)])[0]
    np.save(GOLDEN, vector.astype(np.float32))
    print(f"wrote {GOLDEN}")


@pytest.mark.slow
@pytest.mark.parametrize("size", [(2000, 190), (190, 2000), (3000, 40), (40, 3000)])
def test_very_wide_or_tall_photos_are_embedded(real_embedder, size: tuple[int, int]) -> None:
    # Scrolls, swords, friezes, panoramas: once a crash in the network's first layers.
    image = Image.fromarray(
        (np.random.default_rng(0).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    )
    vectors = real_embedder.embed([image])
    assert vectors.shape == (1, real_embedder.dim)
    assert np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-4)
