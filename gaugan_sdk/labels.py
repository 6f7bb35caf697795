"""Label sets, palettes and the numpy reference of the generator input.

- `LabelSet`: class names and palette colours of one dataset's label ids; `colorize` ids -> RGB and `decode`
  RGB -> ids (an unknown colour is an error naming it and where it is).
- `to_semantics`: label ids (+ instance ids) -> the float one-hot tensor the generator takes, laid out as
  [label_nc one-hot, dontcare?, instance edges?]. This is the reference the in-graph (exported) version must
  match bit for bit, and the place where bad ids are rejected with a readable error.

numpy only: the runtime imports this without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

__all__ = [
    "DONTCARE_ID", "BUILTIN_LABEL_SETS", "LabelSet", "get_label_set", "generic_label_set", "label_set_for",
    "validate_label_ids", "validate_label_ids_for", "check_label_ids", "instance_edges", "to_semantics"
]

if TYPE_CHECKING:
    from .config import GeneratorConfig

DONTCARE_ID = 255  # the file value that means "unknown"; mapped to channel label_nc when the model has dontcare
DONTCARE_COLOR = (0, 0, 0)  # its colour in the generated palettes (no class id gets pure black there)

# Cityscapes labelIds 0..33 and license plate (-1 in cityscapesScripts, the 35th slot here) with the official
# colours (cityscapesScripts helpers/labels.py; ids 0..4 are black there).
CITYSCAPES = (
    ("unlabeled", (0, 0, 0)), ("ego vehicle", (0, 0, 0)), ("rectification border", (0, 0, 0)),
    ("out of roi", (0, 0, 0)), ("static", (0, 0, 0)), ("dynamic", (111, 74, 0)), ("ground", (81, 0, 81)),
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("parking", (250, 170, 160)),
    ("rail track", (230, 150, 140)), ("building", (70, 70, 70)), ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)), ("guard rail", (180, 165, 180)), ("bridge", (150, 100, 100)),
    ("tunnel", (150, 120, 90)), ("pole", (153, 153, 153)), ("polegroup", (153, 153, 153)),
    ("traffic light", (250, 170, 30)), ("traffic sign", (220, 220, 0)), ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)), ("person", (220, 20, 60)), ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)), ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("caravan", (0, 0, 90)),
    ("trailer", (0, 0, 110)), ("train", (0, 80, 100)), ("motorcycle", (0, 0, 230)), ("bicycle", (119, 11, 32)),
    ("license plate", (0, 0, 142)),
)

# ADE20K SceneParsing (ADEChallengeData2016) raw annotation ids: 0 = other/unlabeled, 1..150 = classes.
# The released NVlabs model sees these raw ids (its loader's "-1" shift is never written back: docs/design.md, 3).
ADE20K = (
    "other", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock",
    "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers",
    "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway",
    "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
    "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island",
    "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower",
    "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel",
    "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship",
    "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name",
    "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)

# COCO-Stuff label PNG ids 0..181 (91 thing slots incl. 11 unused, then 91 stuff classes); 255 = unlabeled.
COCO_STUFF = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", "hat", "backpack", "umbrella", "shoe", "eye glasses", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake",
    "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window", "desk", "toilet", "door", "tv",
    "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator",
    "blender", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush",
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff",
    "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood",
    "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house",
    "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper",
    "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river",
    "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel",
    "tree", "vegetable", "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile",
    "wall-wood", "water-other", "waterdrops", "window-blind", "window-other", "wood",
)
# Fixed colours the reference palette uses for a few COCO-Stuff classes, so landscapes read naturally.
COCO_STUFF_COLORS = {"sea": (54, 62, 167), "sky-other": (95, 219, 255), "tree": (140, 104, 47),
                     "clouds": (170, 170, 170), "grass": (29, 195, 49)}


# The procedural scene classes (ids 0..7) with mask colours in the Cityscapes/COCO spirit.
PROCEDURAL = (("sky", (70, 130, 180)), ("mountain", (140, 100, 60)), ("water", (0, 80, 200)),
              ("grass", (150, 220, 80)), ("tree", (20, 110, 20)), ("road", (128, 64, 128)),
              ("building", (220, 120, 100)), ("car", (255, 0, 0)))


def bit_palette(n: int) -> np.ndarray:
    """The pix2pixHD/SPADE palette: id i gets the bits of (i + 1) spread over R, G, B from the top bit down.

    Distinct for every id below 2**21 and never pure black, so black is free for "dontcare".
    """
    code = np.arange(1, n + 1, dtype=np.int64)
    rgb = np.zeros((n, 3), dtype=np.int64)
    for bit in range(7, 0, -1):
        for channel in range(3):
            rgb[:, channel] |= ((code >> channel) & 1) << bit
        code >>= 3
    return rgb.astype(np.uint8)


@dataclass(frozen=True, eq=False)
class LabelSet:
    """Names and colours of label ids 0..len(names)-1, plus DONTCARE_ID (255) when `dontcare`."""

    name: str
    names: tuple[str, ...]
    palette: np.ndarray  # (len(names), 3) uint8
    dontcare: bool

    def __post_init__(self) -> None:
        if self.palette.shape != (len(self.names), 3) or self.palette.dtype != np.uint8:
            raise ValueError(f"label set {self.name!r}: palette must be uint8 ({len(self.names)}, 3), "
                             f"got {self.palette.dtype} {self.palette.shape}")
        self.palette.setflags(write=False)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"LabelSet({self.name!r}, {len(self)} ids{', dontcare=255' if self.dontcare else ''})"

    def name_of(self, label_id: int) -> str:
        if self.dontcare and label_id == DONTCARE_ID:
            return "dontcare"
        if not 0 <= label_id < len(self.names):
            raise ValueError(f"label id {label_id} is not in label set {self.name!r} ({self._accepted()})")
        return self.names[label_id]

    def id_of(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"no class named {name!r} in label set {self.name!r}") from None

    def colorize(self, label_ids: np.ndarray) -> np.ndarray:
        """Label ids of any shape -> uint8 RGB of shape (..., 3). 255 is black when the set has dontcare."""
        ids = _as_int_array(label_ids, "label ids")
        _check_range(ids, len(self.names), self.dontcare, f"label set {self.name!r}")
        return self._color_lut[ids]

    def decode(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB mask (..., 3) -> int32 label ids (...).

        A colour shared by several ids (Cityscapes gives ids 0-4 black) decodes to the lowest of them. A colour
        that is in no palette entry raises ValueError naming it, its pixel count and its first position.
        """
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8:
            raise TypeError(f"a palette mask must be uint8 RGB, got dtype {rgb.dtype}")
        if rgb.ndim < 3 or rgb.shape[-1] != 3 or rgb.size == 0:
            raise ValueError(f"a palette mask must have shape (H, W, 3) or (N, H, W, 3), got {rgb.shape}")
        keys = _rgb_keys(rgb)
        table_keys, table_ids = self._decode_table
        pos = np.searchsorted(table_keys, keys).clip(max=len(table_keys) - 1)
        known = table_keys[pos] == keys
        if not known.all():
            raise ValueError(self._unknown_colors_message(keys, known))
        return table_ids[pos]

    # ---------------------------------------------------------------- internals
    def _accepted(self) -> str:
        return f"0..{len(self.names) - 1}" + (f" and {DONTCARE_ID}" if self.dontcare else "")

    @cached_property
    def _color_lut(self) -> np.ndarray:
        """id -> colour for every id an int array may hold after the range check (built once per set)."""
        size = max(len(self.names), DONTCARE_ID + 1 if self.dontcare else 0)
        lut = np.zeros((size, 3), dtype=np.uint8)
        lut[:len(self.names)] = self.palette
        if self.dontcare:
            lut[DONTCARE_ID] = DONTCARE_COLOR
        return lut

    @cached_property
    def _decode_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted palette keys (r << 16 | g << 8 | b) and their ids (built once per set)."""
        keys = _rgb_keys(self.palette)
        ids = np.arange(len(self.names), dtype=np.int32)
        if self.dontcare:
            keys = np.append(keys, _rgb_keys(np.array(DONTCARE_COLOR, dtype=np.uint8)))
            ids = np.append(ids, np.int32(DONTCARE_ID))
        # np.unique keeps the first occurrence: the lowest id of a shared colour (dontcare comes after all ids).
        unique_keys, first = np.unique(keys, return_index=True)
        return unique_keys, ids[first]

    def _unknown_colors_message(self, keys: np.ndarray, known: np.ndarray) -> str:
        bad_keys, counts = np.unique(keys[~known], return_counts=True)
        order = np.argsort(-counts)[:5]
        parts = []
        for key, count in zip(bad_keys[order], counts[order]):
            where = tuple(int(i) for i in np.argwhere(keys == key)[0])
            color = ((int(key) >> 16) & 255, (int(key) >> 8) & 255, int(key) & 255)
            parts.append(f"RGB{color} at {where} ({count} px)")
        more = f" and {len(bad_keys) - len(order)} more" if len(bad_keys) > len(order) else ""
        return (f"palette mask has {len(bad_keys)} colour(s) that are not in the {self.name!r} palette: "
                f"{'; '.join(parts)}{more}. Masks must be drawn with exact palette colours (no anti-aliasing or "
                f"JPEG); see gaugan_sdk.labels.get_label_set({self.name!r}).palette")


def _rgb_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _cityscapes() -> LabelSet:
    names, colors = zip(*CITYSCAPES)
    return LabelSet("cityscapes", tuple(names), np.array(colors, dtype=np.uint8), dontcare=False)


def _ade20k() -> LabelSet:  # ids 0..150; the channel of id 150 is also the dontcare channel (label_nc = 150)
    return LabelSet("ade20k", ADE20K, bit_palette(len(ADE20K)), dontcare=True)


def _coco() -> LabelSet:  # ids 0..181 and 182 = the dontcare channel itself (label_nc = 182)
    names = COCO_STUFF + ("unlabeled",)
    palette = bit_palette(len(names))
    for cls, color in COCO_STUFF_COLORS.items():
        palette[COCO_STUFF.index(cls)] = color
    palette[len(COCO_STUFF)] = DONTCARE_COLOR
    return LabelSet("coco", names, palette, dontcare=True)


def _procedural() -> LabelSet:  # the built-in procedural scenes (gaugan_sdk.procedural)
    names, colors = zip(*PROCEDURAL)
    return LabelSet("procedural", tuple(names), np.array(colors, dtype=np.uint8), dontcare=False)


# The built-in label sets by the name a model config records (GeneratorConfig.label_set): a dataset preset with a
# label set of its own (gaugan_sdk.presets) adds its builder here.
LABEL_SETS = {"cityscapes": _cityscapes, "ade20k": _ade20k, "coco": _coco, "procedural": _procedural}
BUILTIN_LABEL_SETS = tuple(LABEL_SETS)


@lru_cache(maxsize=None)
def _builtin(name: str) -> LabelSet:
    if name not in LABEL_SETS:
        raise ValueError(f"unknown label set {name!r}; accepted: {', '.join(BUILTIN_LABEL_SETS)}")
    return LABEL_SETS[name]()


def get_label_set(name: str) -> LabelSet:
    """A built-in label set: "cityscapes" (35 ids), "ade20k" (0..150 + 255), "coco" (0..182 + 255),
    "procedural" (8 scene classes)."""
    return _builtin(name)


def generic_label_set(label_nc: int, dontcare: bool = False) -> LabelSet:
    """Names "class 0".. and the bit palette, for custom datasets."""
    count = label_nc + int(dontcare)
    names = tuple(f"class {i}" for i in range(label_nc)) + (("dontcare",) if dontcare else ())
    return LabelSet(f"generic{label_nc}", names, bit_palette(count), dontcare=dontcare)


def label_set_for(cfg: GeneratorConfig) -> LabelSet:
    """The label set a model config names, or a generic one; its ids must fill the model's label channels."""
    if cfg.label_set is None:
        return generic_label_set(cfg.label_nc, cfg.contain_dontcare_label)
    labels = get_label_set(cfg.label_set)
    if len(labels) != cfg.num_label_channels or labels.dontcare != cfg.contain_dontcare_label:
        raise ValueError(
            f"label set {cfg.label_set!r} has {len(labels)} ids (dontcare={labels.dontcare}) but the model has "
            f"{cfg.num_label_channels} label channels (label_nc={cfg.label_nc}, "
            f"contain_dontcare_label={cfg.contain_dontcare_label}); use label_set=None for a generic palette")
    return labels


# ---------------------------------------------------------------------------------------------- model input
def validate_label_ids(label_ids: np.ndarray, cfg: GeneratorConfig, what: str = "label ids") -> np.ndarray:
    """Check label ids against a model; return them as given, batched to (N, H, W).

    Accepted: an integer array of shape (H, W) or (N, H, W) with ids in 0..num_label_channels-1, plus 255
    when the model has a dontcare channel. Anything else raises, naming the ids, their pixel counts and the range.
    """
    ids = _as_batch(_as_int_array(label_ids, what), what)
    _check_range(ids, cfg.num_label_channels, cfg.contain_dontcare_label,
                 f"this model (label_nc={cfg.label_nc}, contain_dontcare_label={cfg.contain_dontcare_label})")
    return ids


def validate_label_ids_for(label_ids: np.ndarray, labels: LabelSet | None, what: str = "label ids") -> np.ndarray:
    """validate_label_ids for an artifact whose model config is unknown (described from its IO): ids are checked
    against `labels` when given, else only to be >= 0 and fit int32 (the in-graph one-hot turns an id past the
    model's classes into an all-zero pixel: no error, no class)."""
    ids = _as_batch(_as_int_array(label_ids, what), what)
    if labels is not None:
        _check_range(ids, len(labels), labels.dontcare, f"label set {labels.name!r}")
    else:
        _check_range(ids, int(np.iinfo(np.int32).max), False, "an artifact of unknown label set")
    return ids


def check_label_ids(label_ids: np.ndarray, cfg: GeneratorConfig, what: str = "label ids") -> np.ndarray:
    """validate_label_ids, then as int64 (N, H, W) with 255 mapped to its channel, label_nc."""
    ids = validate_label_ids(label_ids, cfg, what).astype(np.int64, copy=True)
    if cfg.contain_dontcare_label:
        ids[ids == DONTCARE_ID] = cfg.label_nc
    return ids


def instance_edges(instance_ids: np.ndarray) -> np.ndarray:
    """(..., H, W) instance ids -> uint8 edge map: 1 where a pixel differs from a 4-neighbour (both sides)."""
    t = np.asarray(instance_ids)
    edge = np.zeros(t.shape, dtype=bool)
    horizontal = t[..., :, 1:] != t[..., :, :-1]
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    vertical = t[..., 1:, :] != t[..., :-1, :]
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    return edge.astype(np.uint8)


def to_semantics(label_ids: np.ndarray, instance_ids: np.ndarray | None, cfg: GeneratorConfig) -> np.ndarray:
    """Label ids (H, W) or (N, H, W) [+ instance ids of the same shape] -> float32 (N, semantic_nc, H, W).

    Channels: one-hot of the ids over num_label_channels (dontcare 255 -> channel label_nc), then the instance
    edge map when the model uses instances. This is the numpy reference of the generator input.
    """
    ids = check_label_ids(label_ids, cfg)
    n, h, w = ids.shape
    out = np.zeros((n, cfg.semantic_nc, h * w), dtype=np.float32)
    np.put_along_axis(out, ids.reshape(n, 1, h * w), 1.0, axis=1)
    out = out.reshape(n, cfg.semantic_nc, h, w)
    if cfg.use_instance:
        if instance_ids is None:
            raise ValueError("this model uses instance edges (use_instance=True): pass instance ids of the label "
                             "map's shape; without instance annotations pass the label map itself, whose class "
                             "boundaries then become the edges")
        inst = _as_batch(_as_int_array(instance_ids, "instance ids"), "instance ids")
        if inst.shape != ids.shape:
            raise ValueError(f"instance ids have shape {np.shape(instance_ids)} but the label ids have shape "
                             f"{np.shape(label_ids)}; they must be the same")
        out[:, -1] = instance_edges(inst)
    elif instance_ids is not None:
        raise ValueError("this model does not use instance maps (use_instance=False); pass instance_ids=None")
    return out


def _as_int_array(values: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        hint = " (a float map is often an image or a normalized tensor; label maps hold integer class ids)" \
            if arr.dtype.kind == "f" else ""
        raise TypeError(f"{what} must be an integer array (uint8, int32, int64, ...), got dtype {arr.dtype}{hint}")
    if arr.size == 0:
        raise ValueError(f"{what} are empty (shape {arr.shape})")
    return arr


def _as_batch(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim == 3:
        return arr
    raise ValueError(f"{what} must have shape (H, W) or (N, H, W), got {arr.shape}")


_CHECK_BLOCK = 1 << 22  # pixels per block of the id range check


def _check_range(ids: np.ndarray, count: int, dontcare: bool, owner: str) -> None:
    if int(ids.min()) >= 0 and int(ids.max()) < count:  # the common case: two reductions, no temporaries
        return
    found: dict[int, int] = {}
    rows = max(1, _CHECK_BLOCK // ids.shape[2])  # bounded temporaries, whatever the map's size
    for m in ids:
        for start in range(0, m.shape[0], rows):
            part = m[start:start + rows]
            bad = (part < 0) | (part >= count)
            if dontcare:
                bad &= part != DONTCARE_ID
            if bad.any():
                for v, c in zip(*np.unique(part[bad], return_counts=True)):
                    found[int(v)] = found.get(int(v), 0) + int(c)
    if not found:
        return
    values, counts = sorted(found), [found[v] for v in sorted(found)]
    listed = ", ".join(f"{int(v)} ({int(c)} px)" for v, c in zip(values[:8], counts[:8]))
    more = f" and {len(values) - 8} more" if len(values) > 8 else ""
    accepted = f"0..{count - 1}" + (f" and {DONTCARE_ID} (dontcare)" if dontcare else "")
    raise ValueError(f"label id(s) out of range for {owner}: {listed}{more}; accepted ids: {accepted}")
