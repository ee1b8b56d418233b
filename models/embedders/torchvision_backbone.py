"""Any torchvision classification backbone as a GeM embedder, weights from a local file.

Named ``torchvision:<arch>`` (e.g. ``torchvision:resnet50``); the weights file comes from
``ARTMATCH_EMBEDDER__WEIGHTS_PATH`` and is never downloaded. The version records the weights
file's digest, so swapping weights re-embeds the catalogue.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from kernel.errors import ConfigError
from models.embedders.base import l2_normalise, register_embedder_family
from models.embedders.torch_common import gem, set_threads, to_tensor

if TYPE_CHECKING:
    from kernel.settings import EmbedderSettings

__all__ = ["TorchvisionEmbedder"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _trunk(model: torch.nn.Module) -> torch.nn.Module:
    """The convolutional part that ends in a feature map."""
    if hasattr(model, "features") and isinstance(model.features, torch.nn.Module):
        return model.features  # efficientnet, mobilenet, convnext, vgg, densenet, ...
    if hasattr(model, "fc") and hasattr(model, "avgpool"):
        return torch.nn.Sequential(*list(model.children())[:-2])  # resnet, resnext, regnet
    raise ConfigError(f"cannot find the feature layers of {type(model).__name__}")


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:12]


class TorchvisionEmbedder:
    def __init__(
        self, arch: str, weights_path: Path, *, image_size: int = 320, gem_p: float = 3.0
    ) -> None:
        import torchvision

        if arch not in torchvision.models.list_models():
            raise ConfigError(
                f"unknown torchvision architecture {arch!r}; e.g. resnet50, efficientnet_b0, "
                "convnext_tiny"
            )
        path = Path(weights_path)
        if not path.is_file():
            raise ConfigError(f"weights file {path} not found (ARTMATCH_EMBEDDER__WEIGHTS_PATH)")
        model = torchvision.models.get_model(arch, weights=None)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(
                state.get("state_dict", state) if isinstance(state, dict) else state
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(f"weights file {path} does not fit {arch}: {exc}") from None
        self._trunk = _trunk(model).eval()
        self.name = f"torchvision:{arch}"
        self.image_size = image_size
        self.gem_p = gem_p
        with torch.inference_mode():
            probe = self._trunk(torch.zeros(1, 3, 64, 64))
        self.dim = int(probe.shape[1])
        self.version = f"{_file_digest(path)}/gem{gem_p:g}/s{image_size}/aspect"

    @torch.inference_mode()
    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = []
        for img in images:
            x = to_tensor(img, longest_side=self.image_size, mean=_IMAGENET_MEAN, std=_IMAGENET_STD)
            rows.append(gem(self._trunk(x), p=self.gem_p)[0].numpy())
        return l2_normalise(np.stack(rows))


@register_embedder_family("torchvision")
def _create(arch: str, settings: EmbedderSettings) -> TorchvisionEmbedder:
    if settings.weights_path is None:
        raise ConfigError(
            f"torchvision:{arch} needs a local weights file: set ARTMATCH_EMBEDDER__WEIGHTS_PATH"
        )
    set_threads(settings.threads)
    return TorchvisionEmbedder(arch, settings.weights_path)
