"""Local features for the second, geometric stage of matching.

A `LocalFeatures` value holds keypoints in the *original* image's pixel coordinates (so a box or
transform computed from them applies to the photo the user uploaded, whatever size we worked
at) plus one descriptor per keypoint. It serialises to a compact blob for the catalogue DB.

Method choice (measured with `scripts/measure_verification.py` on museum-paintings): RootSIFT
at 640 px / 1000 keypoints. ORB extracts ~20x faster but found fewer true pairs at a safe
threshold (TPR 0.85 vs 0.92 at 15 inliers), let one wrong pair reach 68 inliers, and has no
mirror trick; RootSIFT edges out plain SIFT; 800 px / 1500 keypoints gained ~1 point of TPR
for twice the time. AKAZE is not shipped in OpenCV 5's main module.

SIFT descriptors are stored as uint8 (OpenCV saturates them to 0..255 integers, so this is
lossless) and the RootSIFT mapping is applied at match time, which keeps blobs small (~81 KiB
for 1000 keypoints, zstd) and lets the same blob serve plain SIFT too. Blobs live in the blob
store (`storage.features`); quantising further was not worth it: uint8 SIFT is already the
lossless form, and keypoints as float16 lose whole pixels on photos over 2,048 px.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass

import cv2
import numpy as np
import zstandard

from kernel.errors import InvalidInput

__all__ = [
    "DEFAULT_MAX_KEYPOINTS",
    "FEATURES_KEY",
    "DEFAULT_MAX_SIDE",
    "DEFAULT_METHOD",
    "METHODS",
    "LocalFeatures",
    "QUERY_CONTRAST_THRESHOLD",
    "QUERY_MAX_KEYPOINTS",
    "QUERY_MAX_SIDE",
    "extract_local_features",
    "extract_query_features",
    "matching_descriptors",
    "mirror_descriptors",
]

METHODS = ("rootsift", "sift", "orb")
DEFAULT_METHOD = "rootsift"
DEFAULT_MAX_SIDE = 640
DEFAULT_MAX_KEYPOINTS = 1000
#: Names the stored features: a change of method or parameters means re-extraction.
FEATURES_KEY = f"{DEFAULT_METHOD}/{DEFAULT_MAX_SIDE}/{DEFAULT_MAX_KEYPOINTS}"

#: A query photo is described more finely than a catalogue photo: it may hold several small,
#: tilted objects, each needing enough keypoints of its own (see `extract_query_features`).
QUERY_MAX_SIDE = 1000
QUERY_MAX_KEYPOINTS = 4000
QUERY_CONTRAST_THRESHOLD = 0.02

#: Blob format (`LocalFeatures.to_bytes`): 2 is a struct header + zstd; 1 was ``.npz``
#: (zlib), still read so catalogues written before stay usable.
_FORMAT_VERSION = 2
_NPZ_VERSION = 1
_MAGIC = b"AMLF"
# magic, version, method length, width, height, keypoints, descriptor dim, scale, dtype.
_HEADER = struct.Struct("<4sBBIIIHd4s")
# Level 3: within 2 % of level 19's size at a twentieth of its time (README, "Local features
# outside the database").
_ZSTD_LEVEL = 3
#: OpenCV's default contrast threshold for SIFT (what catalogue photos are described with).
_SIFT_CONTRAST = 0.04
# Below this the detectors find almost nothing and the resize arithmetic gets silly.
_MIN_SIDE = 16


@dataclass(frozen=True, eq=False)
class LocalFeatures:
    """Keypoints (float32 Nx2, original pixels) and descriptors (NxD) of one image."""

    keypoints: np.ndarray
    descriptors: np.ndarray
    width: int
    height: int
    method: str
    #: Original pixels per working pixel; geometric tolerances scale with it.
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidInput(f"unknown local feature method {self.method!r}; valid: {METHODS}")
        kp = np.asarray(self.keypoints, dtype=np.float32).reshape(-1, 2)
        desc = np.asarray(self.descriptors)
        if desc.ndim != 2 or len(desc) != len(kp):
            raise InvalidInput(
                f"descriptors must be an N x D array matching {len(kp)} keypoints, "
                f"got shape {desc.shape}"
            )
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "descriptors", desc)

    def __len__(self) -> int:
        return len(self.keypoints)

    def subset(self, keep: np.ndarray) -> LocalFeatures:
        """The features selected by a boolean mask or index array."""
        return LocalFeatures(
            keypoints=self.keypoints[keep],
            descriptors=self.descriptors[keep],
            width=self.width,
            height=self.height,
            method=self.method,
            scale=self.scale,
        )

    def to_bytes(self) -> bytes:
        """The version 2 blob: a fixed header, then keypoints (float32) and descriptors
        (uint8 for the SIFT family and ORB) compressed together with zstd (see module doc)."""
        method = self.method.encode()
        desc = np.ascontiguousarray(self.descriptors)
        header = _HEADER.pack(
            _MAGIC,
            _FORMAT_VERSION,
            len(method),
            self.width,
            self.height,
            len(self),
            desc.shape[1],
            self.scale,
            desc.dtype.str.encode().ljust(4),
        )
        body = self.keypoints.tobytes() + desc.tobytes()
        return header + method + zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(body)

    @classmethod
    def from_bytes(cls, blob: bytes) -> LocalFeatures:
        """Reads both formats: version 2 and the version 1 ``.npz`` of older catalogues."""
        if blob[: len(_MAGIC)] != _MAGIC:
            return cls._from_npz(blob)
        try:
            magic, version, mlen, width, height, count, dim, scale, dtype = _HEADER.unpack_from(
                blob
            )
            if version != _FORMAT_VERSION:
                raise InvalidInput(f"unsupported local feature blob version {version}")
            start = _HEADER.size + mlen
            method = blob[_HEADER.size : start].decode()
            body = zstandard.ZstdDecompressor().decompress(blob[start:])
            kp_bytes = count * 2 * 4
            keypoints = np.frombuffer(body, dtype=np.float32, count=count * 2).reshape(count, 2)
            descriptors = np.frombuffer(
                body, dtype=np.dtype(dtype.decode().strip()), offset=kp_bytes
            ).reshape(count, dim)
        except (
            struct.error,
            ValueError,
            TypeError,
            UnicodeDecodeError,
            zstandard.ZstdError,
        ) as exc:
            raise InvalidInput(f"corrupt local feature blob: {exc}") from exc
        return cls(
            keypoints=keypoints,
            descriptors=descriptors,
            width=width,
            height=height,
            method=method,
            scale=scale,
        )

    @classmethod
    def _from_npz(cls, blob: bytes) -> LocalFeatures:
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                version = int(data["version"])
                if version != _NPZ_VERSION:
                    raise InvalidInput(f"unsupported local feature blob version {version}")
                width, height = (int(v) for v in data["meta"])
                return cls(
                    keypoints=data["keypoints"],
                    descriptors=data["descriptors"],
                    width=width,
                    height=height,
                    method=str(data["method"]),
                    scale=float(data["scale"]),
                )
        except (ValueError, KeyError, OSError, EOFError) as exc:
            raise InvalidInput(f"corrupt local feature blob: {exc}") from exc


def _to_gray(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InvalidInput("image must be a uint8 numpy array")
    if image.ndim == 2:
        gray = image
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        code = cv2.COLOR_RGB2GRAY if image.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        gray = cv2.cvtColor(image, code)
    else:
        raise InvalidInput(f"image must be HxW, HxWx3 or HxWx4, got shape {image.shape}")
    return gray


def _empty(method: str, width: int, height: int) -> LocalFeatures:
    dim = 32 if method == "orb" else 128
    return LocalFeatures(
        keypoints=np.zeros((0, 2), np.float32),
        descriptors=np.zeros((0, dim), np.uint8),
        width=width,
        height=height,
        method=method,
    )


def _working_factor(width: int, height: int, max_side: int) -> float:
    factor = min(1.0, max_side / max(height, width))
    if min(height, width) * factor < 2 * _MIN_SIDE:
        # A scroll, a sword, a frieze: shrinking the long side to max_side would leave too
        # few pixels across for any keypoint. Keep the area of a max_side square instead.
        factor = min(1.0, 2 * _MIN_SIDE / min(height, width), max_side / math.sqrt(height * width))
    return factor


def extract_local_features(
    image_rgb: np.ndarray,
    *,
    method: str = DEFAULT_METHOD,
    max_side: int = DEFAULT_MAX_SIDE,
    max_keypoints: int = DEFAULT_MAX_KEYPOINTS,
    contrast_threshold: float | None = None,
) -> LocalFeatures:
    """Detect and describe keypoints; the image is shrunk to `max_side` for speed only.

    ``contrast_threshold`` (SIFT family; OpenCV's default 0.04) lower finds more, weaker
    keypoints: what a query needs to find small, tilted objects in a cluttered photo. The
    keypoints come strongest first, so a prefix is the best smaller set.
    """
    if method not in METHODS:
        raise InvalidInput(f"unknown local feature method {method!r}; valid: {METHODS}")
    if max_side < _MIN_SIDE or max_keypoints < 1:
        raise InvalidInput("max_side must be >= 16 and max_keypoints >= 1")
    gray = _to_gray(image_rgb)
    height, width = gray.shape
    factor = _working_factor(width, height, max_side)
    if min(height, width) * factor < _MIN_SIDE:
        # Too thin to hold a keypoint (a 3-pixel strip): no local evidence, which the search
        # treats like a blank photo, rather than an error that would refuse the photo.
        return _empty(method, width, height)
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    # Per-axis factors: rounding the working size makes them differ slightly.
    sx = width / gray.shape[1]
    sy = height / gray.shape[0]

    detector: cv2.Feature2D
    if method == "orb":
        detector = cv2.ORB.create(nfeatures=max_keypoints, scaleFactor=1.2, nlevels=8)
    else:
        detector = cv2.SIFT.create(
            nfeatures=max_keypoints,
            contrastThreshold=_SIFT_CONTRAST if contrast_threshold is None else contrast_threshold,
        )
    keypoints, descriptors = detector.detectAndCompute(gray, None)
    if descriptors is not None and keypoints:
        # Strongest first (OpenCV returns them in position order), so that any prefix is the
        # best smaller set: the query's pairwise share, the compact descriptor index's
        # `COMPACT_PER_PHOTO` (storage.descriptors.faiss_index).
        order = np.argsort([-kp.response for kp in keypoints], kind="stable")
        keypoints, descriptors = [keypoints[i] for i in order], descriptors[order]
    if descriptors is None or not keypoints:
        dim = 32 if method == "orb" else 128
        descriptors = np.zeros((0, dim), dtype=np.uint8)
        points = np.zeros((0, 2), dtype=np.float32)
    else:
        # SIFT can return slightly more than nfeatures when responses tie.
        keypoints, descriptors = keypoints[:max_keypoints], descriptors[:max_keypoints]
        points = np.array([kp.pt for kp in keypoints], dtype=np.float32)
        # OpenCV's pixel centres sit at integer coordinates; map centre to centre.
        points[:, 0] = (points[:, 0] + 0.5) * sx - 0.5
        points[:, 1] = (points[:, 1] + 0.5) * sy - 0.5
        if method != "orb":
            descriptors = np.clip(np.rint(descriptors), 0, 255).astype(np.uint8)
    return LocalFeatures(
        keypoints=points,
        descriptors=descriptors,
        width=width,
        height=height,
        method=method,
        scale=float(max(sx, sy)),
    )


def matching_descriptors(features: LocalFeatures) -> np.ndarray:
    """Descriptors in the space they are compared in: unit-L2 float32 for the SIFT family."""
    desc = features.descriptors
    if features.method == "orb":
        return desc
    desc = desc.astype(np.float32)
    if features.method == "rootsift":
        # Hellinger kernel (Arandjelovic & Zisserman 2012): L1-normalise, then square root.
        desc = np.sqrt(desc / (desc.sum(axis=1, keepdims=True) + 1e-7))
    else:
        desc = desc / (np.linalg.norm(desc, axis=1, keepdims=True) + 1e-7)
    return desc


def _mirror_permutation() -> np.ndarray:
    # A SIFT descriptor is a 4x4 grid of 8-bin orientation histograms in the keypoint's frame.
    # Mirroring the image reverses the frame's handedness: grid rows swap and the orientation
    # bins run backwards. Checked against descriptors of actually flipped images.
    index = np.arange(128).reshape(4, 4, 8)
    index = index[::-1, :, :]
    index = index[:, :, (-np.arange(8)) % 8]
    return index.reshape(-1)


_MIRROR_PERMUTATION = _mirror_permutation()


def mirror_descriptors(descriptors: np.ndarray) -> np.ndarray:
    """SIFT-family descriptors as they would be computed on the horizontally mirrored image.

    This lets a mirrored photo be verified without extracting features again; keypoint
    positions need no change because the matched points are the same pixels.
    """
    if descriptors.ndim != 2 or descriptors.shape[1] != 128:
        raise InvalidInput("mirroring needs 128-dimensional SIFT-family descriptors")
    return descriptors[:, _MIRROR_PERMUTATION]


def extract_query_features(image_rgb: np.ndarray) -> LocalFeatures:
    """The local features of a query photo: RootSIFT at up to 1,000 px, up to 4,000
    keypoints with half OpenCV's contrast threshold, strongest first.

    A catalogue photo shows one object filling the frame (640 px, 1,000 keypoints suffice); a
    seized lot shows several, each small. Issue 9's reference run measured 0.967 of the
    seizure-lot objects found with these settings against 0.55 before.
    """
    return extract_local_features(
        image_rgb,
        max_side=QUERY_MAX_SIDE,
        max_keypoints=QUERY_MAX_KEYPOINTS,
        contrast_threshold=QUERY_CONTRAST_THRESHOLD,
    )
