"""Procedural scenes: label maps, instance maps and photo-like images of outdoor scenes generated from a seed.

Used where real data is missing: the built-in training dataset, export calibration and verification, demos,
tests. A scene is drawn in terms of scene classes (sky, mountain, water, grass, tree, road, building, car) and
mapped to the ids of a label set by class name, so the same seed gives a comparable scene for the "procedural"
label set, Cityscapes, ADE20K and COCO-Stuff. Each scene class has its own appearance (colour, grain, pattern:
`APPEARANCES`), so `render_scene` turns a layout into an image a generator can learn, and `SceneOracle`
segments an image back to label ids from those appearances: the stand-in for the segmentation network the
paper scores generated images with (mIoU). Pure numpy, deterministic per (seed, size, label set).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import LabelSet

__all__ = ["scene_ids", "scene_layout", "scene_batch", "mask_batch", "MASK_KINDS", "blocky_labels", "scene_sample", "render_scene", "Appearance", "SceneOracle"]

# scene class -> candidate class names in label sets, first match wins; no match: the element is not drawn
SCENE_CLASSES: dict[str, tuple[str, ...]] = {
    "sky": ("sky", "sky-other"),
    "mountain": ("mountain", "hill"),
    "water": ("water", "sea", "water-other", "river"),
    "grass": ("grass", "terrain", "field"),
    "tree": ("tree", "vegetation"),
    "road": ("road",),
    "building": ("building", "building-other"),
    "car": ("car",),
}


def scene_ids(labels: LabelSet) -> dict[str, int]:
    """Scene class -> label id in `labels`; generic label sets (no names) take ids 0, 1, 2, ... in order."""
    if labels.name.startswith("generic"):
        return {cls: i % len(labels) for i, cls in enumerate(SCENE_CLASSES)}
    ids = {}
    for cls, names in SCENE_CLASSES.items():
        for name in names:
            if name in labels.names:
                ids[cls] = labels.names.index(name)
                break
    return ids


def scene_layout(seed: int, height: int, width: int, labels: LabelSet) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (label ids uint8 (H, W), instance ids int32 (H, W)); instances number each object."""
    if height < 8 or width < 8:
        raise ValueError(f"scene size {height}x{width} is too small; at least 8x8")
    rng = np.random.default_rng(seed)
    ids = scene_ids(labels)
    ground = ids.get("grass", next(iter(ids.values())))
    label = np.full((height, width), ground, dtype=np.int32)
    instance = np.zeros((height, width), dtype=np.int32)
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]

    def ridge(mean: float, amplitude: float, waves: int) -> np.ndarray:
        """A smooth random line over the columns (sum of a few sines), in rows."""
        x = np.linspace(0, 2 * np.pi, width)
        line = np.full(width, mean)
        for k in range(1, waves + 1):
            line += amplitude / k * np.sin(k * x * rng.uniform(0.5, 1.5) + rng.uniform(0, 2 * np.pi))
        return line[None, :]

    horizon = ridge(height * rng.uniform(0.35, 0.55), height * 0.03, 3)
    if "sky" in ids:
        label[rows < horizon] = ids["sky"]
    if "mountain" in ids and rng.random() < 0.8:
        label[(rows >= ridge(height * rng.uniform(0.15, 0.3), height * 0.12, 4)) & (rows < horizon)] = ids["mountain"]
    if "water" in ids and rng.random() < 0.6:  # a lake: an ellipse just below the horizon
        cy, cx = horizon.mean() + height * rng.uniform(0.08, 0.2), width * rng.uniform(0.2, 0.8)
        ry, rx = height * rng.uniform(0.05, 0.12), width * rng.uniform(0.15, 0.35)
        label[((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 < 1] = ids["water"]
    if "road" in ids and rng.random() < 0.7:  # a road narrowing towards a vanishing point on the horizon
        vx, bottom = width * rng.uniform(0.3, 0.7), width * rng.uniform(0.2, 0.45)
        top = horizon.mean()
        half = np.clip((rows - top) / max(height - top, 1), 0, 1) * bottom
        label[(rows > top) & (np.abs(cols - vx) < half)] = ids["road"]
    next_instance = 1

    def place(cls: str, count: int, size: tuple[float, float], shape: str) -> None:
        nonlocal next_instance
        if cls not in ids:
            return
        for _ in range(count):
            h, w = max(2, int(height * rng.uniform(*size))), max(2, int(width * rng.uniform(*size) * 0.6))
            low = 0.1 if shape == "box" else -0.5  # boxes (buildings, cars) stand on the ground
            y = int(np.clip(horizon.mean() + rng.uniform(low, 1.5) * h, h, height - 1))
            x = int(rng.uniform(0, width - w))
            if shape == "blob":
                mask = ((rows - (y - h / 2)) / (h / 2)) ** 2 + ((cols - (x + w / 2)) / (w / 2)) ** 2 < 1
            else:
                mask = (rows >= y - h) & (rows < y) & (cols >= x) & (cols < x + w)
            label[mask] = ids[cls]
            instance[mask] = next_instance
            next_instance += 1

    place("building", int(rng.integers(0, 4)), (0.15, 0.35), "box")
    place("tree", int(rng.integers(1, 6)), (0.1, 0.3), "blob")
    place("car", int(rng.integers(0, 3)), (0.05, 0.1), "box")
    # Stuff regions (sky, ground, ...) get one instance id per class, as in COCO-Stuff / Cityscapes maps.
    stuff = instance == 0
    instance[stuff] = -label[stuff] - 1
    instance -= instance.min()
    return label.astype(np.uint8), instance


def scene_batch(seed: int, count: int, height: int, width: int, labels: LabelSet) -> tuple[np.ndarray, np.ndarray]:
    """`count` scenes from consecutive seeds: label ids (N, H, W) uint8 and instance ids (N, H, W) int32."""
    pairs = [scene_layout(seed + i, height, width, labels) for i in range(count)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


MASK_KINDS = ("scenes", "blocky", "one-class", "noise")  # what the sparse graph is measured and tested on


def blocky_labels(rng: np.random.Generator, count: int, height: int, width: int, classes: int,
                  block: int = 8) -> np.ndarray:
    """Random label ids 0..classes-1 constant on block x block squares (N, H, W) uint8: the tests' maps."""
    coarse = rng.integers(0, classes, size=(count, -(-height // block), -(-width // block)))  # ceil: any size
    return coarse.repeat(block, axis=1).repeat(block, axis=2)[:, :height, :width].astype(np.uint8)


def mask_batch(kind: str, seed: int, count: int, height: int, width: int,
               labels: LabelSet) -> tuple[np.ndarray, np.ndarray]:
    """`count` maps of one kind, label ids (N, H, W) uint8 and instance ids (N, H, W) int32: "scenes"
    (scene_batch), "blocky" (8-pixel squares of random classes, instances in 16-pixel squares), "one-class"
    (one random class everywhere, one instance: no boundary but the border), "noise" (a random class per pixel,
    each pixel its own instance: all boundary)."""
    if kind == "scenes":
        return scene_batch(seed, count, height, width, labels)
    if kind not in MASK_KINDS:
        raise ValueError(f"mask kind {kind!r}; accepted: {', '.join(MASK_KINDS)}")
    rng = np.random.default_rng(seed)
    classes = len(labels)
    if kind == "blocky":
        label = blocky_labels(rng, count, height, width, classes)
        objects = blocky_labels(rng, count, height, width, 3, block=16)
        return label, label.astype(np.int32) * 1000 + objects
    if kind == "one-class":
        label = np.broadcast_to(rng.integers(0, classes, (count, 1, 1)), (count, height, width)).astype(np.uint8)
        return label, np.zeros((count, height, width), np.int32)
    label = rng.integers(0, classes, (count, height, width)).astype(np.uint8)
    return label, np.arange(count * height * width, dtype=np.int32).reshape(count, height, width)


# ---------------------------------------------------------------------------------------------- appearance
@dataclass(frozen=True)
class Appearance:
    """How a scene class looks: a mean colour, luminance noise of a given strength and grain (its spatial
    scale in pixels at 256 px image height), and an optional pattern. Distinct means and textures keep the
    classes apart for the oracle, and give a generator something to learn beyond flat colour."""

    color: tuple[int, int, int]
    noise: float
    grain: float
    pattern: str = ""  # "" | "sky" (brighter upwards) | "ripples" | "windows" | "shade" (darker downwards)


APPEARANCES: dict[str, Appearance] = {
    "sky": Appearance((135, 185, 230), 3.0, 16.0, "sky"),
    "mountain": Appearance((125, 110, 100), 14.0, 6.0, "shade"),
    "water": Appearance((35, 75, 135), 6.0, 2.0, "ripples"),
    "grass": Appearance((95, 155, 55), 16.0, 1.0),
    "tree": Appearance((35, 85, 40), 20.0, 5.0),
    "road": Appearance((85, 85, 90), 5.0, 1.0),
    "building": Appearance((160, 85, 65), 6.0, 1.0, "windows"),
    "car": Appearance((190, 40, 170), 5.0, 1.0),
}


def scene_sample(seed: int, height: int, width: int, labels: LabelSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: label ids uint8 (H, W), instance ids int32 (H, W) and its image uint8 RGB (H, W, 3)."""
    label, instance = scene_layout(seed, height, width, labels)
    return label, instance, render_scene(label, instance, labels, seed)


def render_scene(label: np.ndarray, instance: np.ndarray, labels: LabelSet, seed: int) -> np.ndarray:
    """A photo-like uint8 RGB image of a layout: each scene class textured with its `Appearance`, a random
    overall light level per scene, and a brightness per object instance. Ids that are no scene class stay black."""
    if label.ndim != 2 or label.shape != instance.shape:
        raise ValueError(f"render_scene takes (H, W) label and instance maps of one size, got {label.shape} and "
                         f"{instance.shape}")
    rng = np.random.default_rng([seed, 1])  # independent of the layout's stream
    height, width = label.shape
    scale = height / 256
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    image = np.zeros((height, width, 3), dtype=np.float32)
    light = rng.uniform(0.9, 1.1)
    for cls, label_id in scene_ids(labels).items():
        mask = label == label_id
        if not mask.any():
            continue
        look = APPEARANCES[cls]
        shade = look.noise * _grain(rng, height, width, look.grain * scale)
        if look.pattern == "sky":
            shade = shade + 40 * (0.5 - rows / height)
        elif look.pattern == "shade":
            shade = shade - 30 * (rows / height - 0.3)
        elif look.pattern == "ripples":
            period = max(3.0, height / 24)
            shade = shade + 15 * np.sin(2 * np.pi * rows / period + 0.3 * np.sin(cols / (4 * period)))
        elif look.pattern == "windows":
            cell = max(2, round(height / 32))
            shade = shade - 60 * (((rows // cell) % 2 == 1) & ((cols // cell) % 3 == 1))
        pixel = np.asarray(look.color, dtype=np.float32) + shade[..., None]
        image[mask] = pixel[mask]
    objects = np.unique(instance[label == scene_ids(labels).get("car", -1)])
    for obj in objects:  # one brightness per car
        image[instance == obj] *= rng.uniform(0.8, 1.2)
    return np.clip(image * light, 0, 255).round().astype(np.uint8)


def _grain(rng: np.random.Generator, height: int, width: int, size: float) -> np.ndarray:
    """Noise of unit spread whose features are about `size` pixels wide (bilinear upsampling of coarse noise)."""
    if size <= 1.5:
        return rng.standard_normal((height, width)).astype(np.float32)
    coarse = rng.standard_normal((int(np.ceil(height / size)) + 2, int(np.ceil(width / size)) + 2))
    y = np.arange(height) / size
    x = np.arange(width) / size
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return (1.5 * (top * (1 - fy) + bottom * fy)).astype(np.float32)  # 1.5: bilinear mixing lowers the spread


# ---------------------------------------------------------------------------------------------- oracle
class SceneOracle:
    """Segments procedural-scene images back to label ids: a per-pixel Gaussian classifier (class priors and
    full covariances) on local colour and texture (mean RGB and luminance spread in a small window), fitted on
    rendered scenes of the size it scores.

    Scores generated images the way the paper scores them with a segmentation network:

        oracle = SceneOracle.fit(labels, height, width)
        predicted = oracle.segment(images)      # (N, H, W, 3) uint8 -> (N, H, W) int32 label ids
    """

    def __init__(self, labels: LabelSet, ids: np.ndarray, means: np.ndarray, precisions: np.ndarray,
                 log_norms: np.ndarray, window: int):
        self.labels, self.ids, self.window = labels, ids, window
        self._means, self._precisions, self._log_norms = means, precisions, log_norms

    @classmethod
    def fit(cls, labels: LabelSet, height: int, width: int, scenes: int = 12, seed: int = 1_000_000) -> SceneOracle:
        """Fit on `scenes` rendered scenes from seed `seed` on (away from the seeds a dataset usually starts at)."""
        window = max(3, round(height / 256 * 9) | 1)
        features, targets = [], []
        for i in range(scenes):
            label, _, image = scene_sample(seed + i, height, width, labels)
            features.append(_local_features(image, window).reshape(-1, _FEATURES))
            targets.append(label.reshape(-1))
        x, y = np.concatenate(features), np.concatenate(targets)
        ids = np.array(sorted(set(scene_ids(labels).values()) & set(np.unique(y).tolist())), dtype=np.int32)
        means, precisions, log_norms = [], [], []
        for label_id in ids:
            sample = x[y == label_id]
            cov = np.cov(sample, rowvar=False) + 1e-2 * np.eye(_FEATURES)
            means.append(sample.mean(0))
            precisions.append(np.linalg.inv(cov))
            # log prior + Gaussian normalizer: without the prior, boundary pixels (mixed windows) fall to the
            # broadest class instead of the most common one
            log_norms.append(np.log(len(sample) / len(y)) - 0.5 * np.linalg.slogdet(cov)[1])
        return cls(labels, ids, np.array(means), np.array(precisions), np.array(log_norms), window)

    def segment(self, images: np.ndarray) -> np.ndarray:
        """uint8 RGB (H, W, 3) or (N, H, W, 3) -> int32 label ids (H, W) or (N, H, W)."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[-1] != 3:
            raise ValueError(f"the oracle segments uint8 RGB images (H, W, 3) or (N, H, W, 3), got {images.dtype} "
                             f"{images.shape}")
        if images.ndim == 3:
            return self.segment(images[None])[0]
        out = np.empty(images.shape[:3], dtype=np.int32)
        for n, image in enumerate(images):
            x = _local_features(image, self.window)
            scores = np.stack([self._log_norms[k] - 0.5 * np.einsum("hwi,ij,hwj->hw", x - m, p, x - m)
                               for k, (m, p) in enumerate(zip(self._means, self._precisions))])
            out[n] = self.ids[scores.argmax(0)]
        return out


_FEATURES = 4


def _local_features(image: np.ndarray, window: int) -> np.ndarray:
    """(H, W, 4) float: window means of R, G, B and the window spread of luminance."""
    rgb = image.astype(np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    mean = _box_mean(rgb, window)
    spread = np.sqrt(np.maximum(_box_mean(luma[..., None] ** 2, window) - _box_mean(luma[..., None], window) ** 2,
                                0))
    return np.concatenate([mean, spread], axis=-1)


def _box_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k x k window (edge-padded) of an (H, W, C) array, by summed-area table."""
    pad = k // 2
    padded = np.pad(x, ((pad + 1, pad), (pad + 1, pad), (0, 0)), mode="edge").astype(np.float64)
    padded[0], padded[:, 0] = 0, 0
    table = padded.cumsum(0).cumsum(1)
    h, w = x.shape[:2]
    total = table[k:k + h, k:k + w] - table[:h, k:k + w] - table[k:k + h, :w] + table[:h, :w]
    return (total / (k * k)).astype(np.float32)
