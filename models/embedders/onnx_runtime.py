"""EfficientNet-Lite0 + GeM on ONNX Runtime: the torch embedder's vectors, about 3x faster.

The graph is exported from the torch model (`models.embedders.onnx_export`) and fed the very
same pixels (`models.embedders.preprocess`), so the vectors agree with torch's to float
rounding (cosine 1.000000 on the museum photos): the model version is the torch one, and
existing indexes stay valid when the runtime changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from models.embedders.base import l2_normalise
from models.embedders.onnx_export import INPUT, ensure_onnx_model
from models.embedders.preprocess import lite0_version, to_pixels

__all__ = ["OnnxEfficientNetLite0Embedder"]

# The TF-Lite models were trained on inputs scaled to [-1, 1].
_MEAN = (0.5, 0.5, 0.5)
_STD = (0.5, 0.5, 0.5)


class OnnxEfficientNetLite0Embedder:
    name = "efficientnet-lite0"
    dim = 1280
    #: An ingest's worker processes can run it (`ingest.prepare`): it pickles as its
    #: parameters and the path of the exported file, and a session starts in ~0.1 s.
    portable = True

    def __init__(
        self,
        *,
        model_dir: Path,
        image_size: int = 320,
        scales: Sequence[float] = (1.0,),
        gem_p: float = 3.0,
        threads: int = 1,
        model_path: Path | None = None,
    ) -> None:
        import onnxruntime as ort

        self.image_size = image_size
        self.scales = tuple(scales)
        self.gem_p = gem_p
        # The same string as the torch embedder's: the vectors are the same.
        self.version = lite0_version(image_size=image_size, scales=self.scales, gem_p=gem_p)
        self.model_path = model_path or ensure_onnx_model(model_dir, gem_p=gem_p)
        options = ort.SessionOptions()
        # Threads are chosen, not left to the runtime (one per core): ingest runs the CNN
        # beside a pool of decode/SIFT workers, and a server runs requests side by side.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle intra-op threads spinning would steal the cores the workers need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )

    def __reduce__(self) -> tuple[object, tuple[Path, int, tuple[float, ...], float]]:
        # The session does not pickle: a copy opens the same exported file, with one thread
        # (a worker process per core).
        return _rebuild, (self.model_path, self.image_size, self.scales, self.gem_p)

    def _pool(self, pixels: list[np.ndarray]) -> np.ndarray:
        """GeM vectors of ``(1, 3, H, W)`` inputs, one forward pass each. Not batched, even
        where shapes agree: 8 photos of one shape in one pass took 15.7 ms a photo against
        8.4 ms one at a time (one thread, `scripts/bench_ingest.py`), and mixed shapes would
        need padding, which changes the vectors."""
        return np.concatenate([self._session.run(None, {INPUT: p})[0] for p in pixels])

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        total = np.zeros((len(images), self.dim), dtype=np.float32)
        for scale in self.scales:
            side = max(32, round(self.image_size * scale))
            pixels = [to_pixels(img, longest_side=side, mean=_MEAN, std=_STD) for img in images]
            total += l2_normalise(self._pool(pixels))
        return l2_normalise(total)


def _rebuild(
    model_path: Path, image_size: int, scales: tuple[float, ...], gem_p: float
) -> OnnxEfficientNetLite0Embedder:
    return OnnxEfficientNetLite0Embedder(
        model_dir=model_path.parent,
        model_path=model_path,
        image_size=image_size,
        scales=scales,
        gem_p=gem_p,
    )
