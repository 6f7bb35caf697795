"""Procedural scene layouts: label maps (and instance maps) of outdoor scenes generated from a seed.

Used where real label maps are missing: export calibration and verification, demos, tests. A scene is drawn
in terms of scene classes (sky, mountain, water, grass, tree, road, building, car) and mapped to the ids of a
label set by class name, so the same seed gives a comparable scene for Cityscapes, ADE20K and COCO-Stuff.
Pure numpy, deterministic per (seed, size, label set).
"""

from __future__ import annotations

import numpy as np

from .labels import LabelSet

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
