"""Deterministic synthetic COCO-format detection data ("toy COCO").

Each image shows a few coloured shapes (circle, square, triangle, cross, ring) at scales from a few pixels up to
half the image, drawn over a cluttered background (stripes, low-contrast blobs and lines, pixel noise). Shapes may
overlap: later shapes cover earlier ones, boxes always span the full shape, and shapes left mostly hidden are
removed from the image and the annotations. Every image is drawn from its own random stream derived from
``(seed, split, index)``, so a given set of parameters produces byte-identical files (for a given numpy).

Layout written by :func:`make_toy_coco`::

    out_dir/train/000000.png ...            out_dir/val/000000.png ...
    out_dir/annotations/instances_train.json
    out_dir/annotations/instances_val.json
    out_dir/meta.json                        (generation parameters and counts)
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring")
DEFAULT_PARAMS: dict[str, int] = dict(num_train=800, num_val=200, img_size=128, seed=0)
SPLITS: tuple[str, ...] = ("train", "val")

FORMAT_VERSION = 1
MIN_OBJECT_SIZE = 8
MAX_OBJECTS = 6
MIN_VISIBLE_FRACTION = 0.3
MIN_COLOUR_DISTANCE = 90.0
COLOUR_CANDIDATES = 8
MAX_WORKERS = 8

Mask = np.ndarray
# (u, v, radius, angle) -> mask, with (u, v) pixel-centre offsets from the shape's centre. Every shape lies within
# the disc of the given radius, whatever its rotation angle.
ShapeFn = Callable[[np.ndarray, np.ndarray, float, float], Mask]


@dataclass
class Shape:
    """One drawn object: class index, pixel mask, colours of the mask's pixels and full-extent box (x, y, w, h)."""

    label: int
    mask: Mask
    colours: np.ndarray
    bbox: tuple[int, int, int, int]


def _circle(u: np.ndarray, v: np.ndarray, radius: float, _angle: float) -> Mask:
    return u**2 + v**2 <= radius**2


def _ring(u: np.ndarray, v: np.ndarray, radius: float, _angle: float) -> Mask:
    inner = min(0.55 * radius, radius - 1.5)
    dist2 = u**2 + v**2
    return (dist2 <= radius**2) & (dist2 >= inner**2)


def _rotate(u: np.ndarray, v: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    cos, sin = np.cos(angle), np.sin(angle)
    return u * cos + v * sin, v * cos - u * sin


def _square(u: np.ndarray, v: np.ndarray, radius: float, angle: float) -> Mask:
    ru, rv = _rotate(u, v, angle)
    return np.maximum(np.abs(ru), np.abs(rv)) <= radius / np.sqrt(2)


def _triangle(u: np.ndarray, v: np.ndarray, radius: float, angle: float) -> Mask:
    normals = angle + np.pi / 2 + 2 * np.pi / 3 * np.arange(3)
    proj = u[None] * np.cos(normals)[:, None, None] + v[None] * np.sin(normals)[:, None, None]
    return np.all(proj <= radius / 2, axis=0)


def _cross(u: np.ndarray, v: np.ndarray, radius: float, angle: float) -> Mask:
    ru, rv = (np.abs(axis) for axis in _rotate(u, v, angle))
    arm, half_bar = 0.94 * radius, 0.32 * radius
    return ((ru <= arm) & (rv <= half_bar)) | ((rv <= arm) & (ru <= half_bar))


SHAPE_FNS: tuple[ShapeFn, ...] = (_circle, _square, _triangle, _cross, _ring)


def _background(rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """Base colour + oriented stripes + low-contrast blobs and lines, as a float32 (H, W, 3) image.

    ``centres`` holds the pixel-centre coordinates of one image axis (the image is square).
    """
    size = centres.size
    xs, ys = centres[None, None, :], centres[None, :, None]
    img = np.broadcast_to(rng.uniform(40, 215, size=3).astype(np.float32), (size, size, 3)).copy()

    theta, freq, phase = rng.uniform(0, np.pi), rng.uniform(0.03, 0.25), rng.uniform(0, 2 * np.pi)
    stripes = np.sin(2 * np.pi * freq * (xs[0] * np.cos(theta) + ys[0] * np.sin(theta)) + phase)
    img += stripes[..., None] * np.float32(rng.uniform(4, 20)) * rng.uniform(0.3, 1.0, size=3).astype(np.float32)

    num_blobs = int(rng.integers(2, 7))
    blob_xy = rng.uniform(0, size, size=(num_blobs, 2, 1)).astype(np.float32)
    sigmas = (rng.uniform(0.04, 0.2, size=(num_blobs, 1)) * size).astype(np.float32)
    amps = rng.uniform(-30, 30, size=(num_blobs, 3)).astype(np.float32)
    gauss_x = np.exp(-((centres - blob_xy[:, 0]) ** 2) / (2 * sigmas**2))
    gauss_y = np.exp(-((centres - blob_xy[:, 1]) ** 2) / (2 * sigmas**2))
    img += np.tensordot(gauss_y[:, :, None] * gauss_x[:, None, :], amps, axes=(0, 0))

    num_lines = int(rng.integers(1, 5))
    angles = rng.uniform(0, np.pi, size=(num_lines, 1, 1)).astype(np.float32)
    offsets = rng.uniform(-size / 2, size / 2, size=(num_lines, 1, 1)).astype(np.float32)
    line_dist = np.abs((xs - size / 2) * np.sin(angles) - (ys - size / 2) * np.cos(angles) - offsets)
    line_amps = rng.uniform(-35, 35, size=(num_lines, 3)).astype(np.float32)
    img += np.tensordot((line_dist < 0.8).astype(np.float32), line_amps, axes=(0, 0))
    return img


def _pick_colour(rng: np.random.Generator, local_mean: np.ndarray) -> np.ndarray:
    """A random colour far enough from the background under the object (the farthest candidate otherwise)."""
    candidates = rng.uniform(0, 255, size=(COLOUR_CANDIDATES, 3))
    dist = np.linalg.norm(candidates - local_mean, axis=1)
    far = np.flatnonzero(dist >= MIN_COLOUR_DISTANCE)
    return candidates[far[0] if far.size else int(np.argmax(dist))]


def _mask_bbox(mask: Mask, x0: int, y0: int) -> tuple[int, int, int, int]:
    """Box (x, y, w, h) of a non-empty mask whose top-left pixel lies at (x0, y0) in the image."""
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    return x0 + int(cols[0]), y0 + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def _sample_shape(rng: np.random.Generator, centres: np.ndarray, background: np.ndarray) -> Shape | None:
    """One random shape fully inside the image, or None when it rasterises to nothing."""
    size = centres.size
    label = int(rng.integers(len(CLASSES)))
    diameter = float(np.exp(rng.uniform(np.log(MIN_OBJECT_SIZE), np.log(size / 2))))
    radius = diameter / 2
    cx, cy = rng.uniform(radius, size - radius, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    x0, y0 = int(cx - radius), int(cy - radius)
    window = (slice(y0, int(np.ceil(cy + radius))), slice(x0, int(np.ceil(cx + radius))))
    u, v = np.meshgrid(centres[window[1]] - np.float32(cx), centres[window[0]] - np.float32(cy))
    local = SHAPE_FNS[label](u, v, radius, angle)
    if not local.any():
        return None
    mask = np.zeros((size, size), dtype=bool)
    mask[window] = local
    base = _pick_colour(rng, background[mask].mean(axis=0))
    shading = rng.uniform(-25, 25, size=2)
    colours = base + ((u[local] * shading[0] + v[local] * shading[1]) / radius)[:, None]
    return Shape(label=label, mask=mask, colours=colours, bbox=_mask_bbox(local, x0, y0))


def _visible(shapes: list[Shape]) -> list[Shape]:
    """Shapes that stay at least MIN_VISIBLE_FRACTION visible once later shapes are drawn over them."""
    if not shapes:
        return []
    owner = np.full(shapes[0].mask.shape, -1)
    for idx, shape in enumerate(shapes):
        owner[shape.mask] = idx
    return [s for idx, s in enumerate(shapes) if (owner == idx).sum() >= MIN_VISIBLE_FRACTION * s.mask.sum()]


def render_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[Shape]]:
    """Draw one image: a uint8 (size, size, 3) array and the shapes it shows, in drawing order."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    img = _background(rng, centres)
    candidates = [_sample_shape(rng, centres, img) for _ in range(int(rng.integers(1, MAX_OBJECTS + 1)))]
    shapes = _visible([s for s in candidates if s is not None])
    for shape in shapes:
        img[shape.mask] = shape.colours
    img += rng.standard_normal(size=img.shape, dtype=np.float32) * rng.uniform(3, 10)
    return np.rint(np.minimum(np.maximum(img, 0), 255)).astype(np.uint8), shapes


def _file_name(idx: int) -> str:
    return f"{idx:06d}.png"


def _save_image(job: tuple[Path, int, int, int, int]) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Render image ``idx`` of a split from its own random stream, save it and return its (label, box) pairs."""
    split_dir, split_index, idx, img_size, seed = job
    pixels, shapes = render_image(np.random.default_rng([seed, split_index, idx]), img_size)
    Image.fromarray(pixels).save(split_dir / _file_name(idx), format="PNG", compress_level=1)
    return [(shape.label, shape.bbox) for shape in shapes]


@contextmanager
def _image_mapper(workers: int) -> Iterator[Callable]:
    """An order-preserving ``map`` over images: the builtin one, or a process pool's when ``workers`` > 1."""
    if workers <= 1:
        yield map
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield partial(pool.imap, chunksize=16)


def _write_split(out_dir: Path, split: str, num_images: int, img_size: int, seed: int, mapper: Callable) -> dict:
    """Render and save one split's images; return its COCO annotation dict."""
    split_dir = out_dir / split
    split_dir.mkdir(parents=True, exist_ok=True)
    for stale in split_dir.glob("*.png"):
        stale.unlink()
    jobs = [(split_dir, SPLITS.index(split), idx, img_size, seed) for idx in range(num_images)]
    images, annotations = [], []
    for idx, objects in enumerate(mapper(_save_image, jobs)):
        images.append(dict(id=idx + 1, file_name=_file_name(idx), width=img_size, height=img_size))
        for label, (x, y, w, h) in objects:
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=idx + 1,
                    category_id=label + 1,
                    bbox=[float(x), float(y), float(w), float(h)],
                    area=float(w * h),
                    iscrowd=0,
                )
            )
    categories = [dict(id=i + 1, name=name, supercategory="shape") for i, name in enumerate(CLASSES)]
    return dict(images=images, annotations=annotations, categories=categories)


def _read_meta(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def make_toy_coco(
    out_dir: str | Path,
    num_train: int = DEFAULT_PARAMS["num_train"],
    num_val: int = DEFAULT_PARAMS["num_val"],
    img_size: int = DEFAULT_PARAMS["img_size"],
    seed: int = DEFAULT_PARAMS["seed"],
    workers: int | None = None,
) -> dict:
    """Write the toy COCO data set under ``out_dir`` unless it already holds one made with the same parameters.

    Images are rendered by ``workers`` processes (default: one per CPU, at most 8); the files do not depend on it.
    Returns the contents of ``out_dir/meta.json``: ``params`` (the arguments), ``format_version``, ``classes``,
    ``num_images`` and ``num_objects`` per split, plus ``generated`` (False when existing data was reused).
    """
    if img_size < 4 * MIN_OBJECT_SIZE:
        raise ValueError(f"img_size must be at least {4 * MIN_OBJECT_SIZE}, got {img_size}")
    out = Path(out_dir)
    params = dict(num_train=num_train, num_val=num_val, img_size=img_size, seed=seed)
    meta_path = out / "meta.json"
    meta = _read_meta(meta_path)
    ann_files = [out / "annotations" / f"instances_{split}.json" for split in SPLITS]
    if meta and meta["params"] == params and meta["format_version"] == FORMAT_VERSION:
        if all(path.is_file() for path in ann_files):
            return dict(meta, generated=False)

    meta_path.unlink(missing_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    meta = dict(params=params, format_version=FORMAT_VERSION, classes=list(CLASSES), num_images={}, num_objects={})
    with _image_mapper(workers or min(os.cpu_count() or 1, MAX_WORKERS)) as mapper:
        for split, num_images, ann_file in zip(SPLITS, (num_train, num_val), ann_files):
            coco = _write_split(out, split, num_images, img_size, seed, mapper)
            ann_file.write_text(json.dumps(coco))
            meta["num_images"][split] = len(coco["images"])
            meta["num_objects"][split] = len(coco["annotations"])
    meta_path.write_text(json.dumps(meta, indent=2))
    return dict(meta, generated=True)


def ensure_toy_coco(data_root: str | Path) -> None:
    """Generate the toy data set with the default parameters if ``data_root`` lacks its annotation files."""
    root = Path(data_root)
    if not all((root / "annotations" / f"instances_{split}.json").is_file() for split in SPLITS):
        make_toy_coco(root)
