"""The exported-graph contract (docs/design.md, "The contract"), written once: what goes in and out of every
ONNX, TensorRT, AOTInductor, OpenVINO and checkpoint artifact, over which shape ranges, and which exact
restructuring of the reference graph it computes (`GraphVariant`).

    generator   label    int32   (N, 1, H, W)   class ids; 255 = dontcare when the model has that channel
                instance int32   (N, 1, H, W)   only when the model uses instance edges
                z        float32 (N, z_dim)     only when the model has a style path (use_vae)
             -> image    float32 (N, 3, H, W) in [-1, 1], or uint8 (N, H, W, 3) RGB with uint8 output
    encoder     style    uint8   (N, Hs, Ws, 3) RGB of any size in STYLE_SIZE (or float32 (N, 3, Hs, Ws))
             -> mu, logvar float32 (N, z_dim)

Dynamic dimensions have names (`batch`, `height`, `width`, `style_height`, `style_width`) and a `Range`
(min, opt, max) each, bounded by MAX_PIXELS for the largest call. The fast graph of a style model takes one
mask for N styles: its label and instance batch is `label_batch`, 1 or the batch of z (its range: 1 .. the
batch's max). Tracing, verification, TensorRT optimization profiles and buffers, Triton configs, sidecars,
`metadata_from_io` and the runtime all derive their IO from `generator_io` / `encoder_io` here.
Torch-free: the runtime imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "LABEL", "INSTANCE", "Z", "IMAGE", "STYLE", "MU", "LOGVAR", "BATCH", "HEIGHT", "WIDTH", "STYLE_HEIGHT",
    "STYLE_WIDTH", "LABEL_BATCH", "ROLES", "GraphKind", "GRAPH_KINDS", "GRAPHS", "IDS_GRAPHS", "CPU_ONLY_GRAPHS",
    "MASK_CONVS", "DENSE_ABOVE", "LOOKUP_MIN_CHANNELS_CPU", "GraphVariant", "REFERENCE", "VARIANT_NAMES",
    "GENERATOR_INPUTS", "ENCODER_INPUTS", "ENCODER_OUTPUTS", "STYLE_SIZE", "DEFAULT_BATCH", "UNBOUNDED_BATCH",
    "MAX_PIXELS", "Range", "Shapes", "TensorSpec", "dim_ranges", "generator_io", "encoder_io", "spec_from_runtime",
    "role_of"
]

# --------------------------------------------------------------------------------------------- names
LABEL, INSTANCE, Z, IMAGE = "label", "instance", "z", "image"
STYLE, MU, LOGVAR = "style", "mu", "logvar"
BATCH, HEIGHT, WIDTH = "batch", "height", "width"
STYLE_HEIGHT, STYLE_WIDTH = "style_height", "style_width"
LABEL_BATCH = "label_batch"  # the mask batch of a broadcasting graph: 1 (one mask for N styles) or the batch
ROLES = ("generator", "encoder")


@dataclass(frozen=True)
class Range:
    """min <= opt <= max of one dimension (TensorRT's optimization-profile triple); all equal when fixed."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        values = (self.min, self.opt, self.max)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise TypeError(f"range {values}: min, opt and max must be ints")
        if not 1 <= self.min <= self.opt <= self.max:
            raise ValueError(f"range {values} must satisfy 1 <= min <= opt <= max")

    @classmethod
    def fixed(cls, value: int) -> Range:
        return cls(value, value, value)

    @classmethod
    def of(cls, value: Range | int | tuple | list, what: str = "range") -> Range:
        """A Range from a Range, an int (fixed) or a (min, opt, max) sequence; errors name `what`."""
        if isinstance(value, Range):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls.fixed(value)
        try:
            low, opt, high = value
            return cls(low, opt, high)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what} {value!r}: expected (min, opt, max) with 1 <= min <= opt <= max, or "
                             f"one int ({e})") from None

    @property
    def dynamic(self) -> bool:
        return self.min != self.max

    def __contains__(self, value: int) -> bool:
        return self.min <= value <= self.max

    def to_list(self) -> list[int]:
        return [self.min, self.opt, self.max]

    def __str__(self) -> str:
        return f"{self.min}..{self.max} (opt {self.opt})" if self.dynamic else str(self.min)


STYLE_SIZE = Range(16, 256, 2048)  # the side of the style images encoders take (resized in-graph to 256)
DEFAULT_BATCH = Range(1, 1, 8)
UNBOUNDED_BATCH = Range(1, 1, 64)  # where nothing sets a limit (checkpoints, ONNX without a range): chunks of 64
# The most label-map pixels one call takes, all maps together: 8192 x 8192, a 192 MiB RGB result. The runtime's
# default per run() (Synthesizer(max_pixels=...)) and the bound of an export's largest call (batch x H x W at
# their maxima), so no artifact asks for buffers no machine has.
MAX_PIXELS = 1 << 26


# --------------------------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Shapes:
    """The export's shape choices: batch range and (dynamic-size generators) height and width ranges in pixels.
    `resolved(cfg)` fills in the config's image size and checks the ranges against the model."""

    batch: Range = DEFAULT_BATCH
    height: Range | None = None  # None: the config's fixed image size
    width: Range | None = None

    def __post_init__(self) -> None:  # accept ints and triples, store Ranges
        for name in (BATCH, HEIGHT, WIDTH):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Range.of(value, f"{name} range"))

    def resolved(self, cfg) -> Shapes:
        """With the config's size where none is given; sizes other than the config's must be multiples of its
        stride, at least two strides, and need a fully convolutional model (no use_vae: its latent grid is
        fixed)."""
        h, w = cfg.image_size
        shapes = Shapes(self.batch, self.height or Range.fixed(h), self.width or Range.fixed(w))
        largest = shapes.batch.max * shapes.height.max * shapes.width.max
        if largest > MAX_PIXELS:
            raise ValueError(f"batch {shapes.batch.max} x {shapes.height.max} x {shapes.width.max} pixels at the "
                             f"ranges' maxima is {largest:,} pixels in one call; accepted: up to {MAX_PIXELS:,} "
                             f"(8192 x 8192): lower the max batch or size")
        if shapes.follows_input(cfg):
            for name, values in ((HEIGHT, shapes.height), (WIDTH, shapes.width)):
                bad = [v for v in values.to_list() if v % cfg.stride or v < 2 * cfg.stride]
                if bad:
                    raise ValueError(f"{name} {bad} not accepted: a generator run at other sizes than its "
                                     f"{h}x{w} takes multiples of its stride {cfg.stride}, at least {2 * cfg.stride}")
            if cfg.use_vae:
                raise ValueError(f"a use_vae generator has a fixed latent grid: it runs at {h}x{w} only")
        return shapes

    @property
    def dynamic_size(self) -> bool:
        return self.height.dynamic or self.width.dynamic

    def follows_input(self, cfg) -> bool:
        """Whether the generator's latent grid must follow the input size (a fully convolutional run): any size in
        the ranges differs from the config's image size."""
        h, w = cfg.image_size
        return {*self.height.to_list()} != {h} or {*self.width.to_list()} != {w}


def dim_ranges(role: str, batch: Range, height: Range, width: Range) -> dict[str, Range]:
    """Each dynamic dimension's name -> its range, for an artifact of `role` (an encoder's height and width are
    its style size; a generator's label batch, where it has one, is 1 .. the batch's max)."""
    if role == "encoder":
        return {BATCH: batch, STYLE_HEIGHT: height, STYLE_WIDTH: width}
    return {BATCH: batch, HEIGHT: height, WIDTH: width, LABEL_BATCH: Range(1, batch.opt, batch.max)}


@dataclass(frozen=True)
class GraphKind:
    """One exact restructuring of the reference graph, and what it asks of a format: the precisions and devices
    it is exported for (None: any), and why it asks that (the refusal says so)."""

    name: str
    ids_level: bool  # its mask branch works on class ids (no one-hot input), one mask for N styles
    precisions: tuple[str, ...] | None = None
    devices: tuple[str, ...] = ("cpu", "cuda")
    why: str = ""


GRAPH_KINDS = {g.name: g for g in (
    GraphKind("reference", ids_level=False),
    GraphKind("fast", ids_level=True),
    GraphKind("sparse", ids_level=True, precisions=("fp32",), devices=("cpu",),
              why="its band has a size known only at run time, which TensorRT plans, .pt2 packages and the fp16 / "
                  "int8 conversions do not take; GPUs run the dense fast graph (graph='fast')"),
)}
GRAPHS = tuple(GRAPH_KINDS)  # the exact restructurings a generator is exported as
IDS_GRAPHS = tuple(g.name for g in GRAPH_KINDS.values() if g.ids_level)  # models.fast: one mask for N styles
CPU_ONLY_GRAPHS = tuple(g.name for g in GRAPH_KINDS.values() if g.devices == ("cpu",))
MASK_CONVS = ("conv", "lookup")  # the fast graph's first mask conv: a conv of the one-hot, or a table lookup
DENSE_ABOVE = 0.5  # the sparse graph's default: a block runs dense above this band fraction (export.sparse_benchmark
# --sweep: sparse = dense at 50-56% band at every level on the 2-core CPU)
# The fast graph on the CPU: the lookup pays from this many mask channels (conv wins at 36, lookup at 151 and
# 184; python -m export.benchmark), and fused convs cost a split (a copy, layout reorders) there. On GPUs dense
# convs run on tensor cores, gathers do not, and slices are free: conv, fused.
LOOKUP_MIN_CHANNELS_CPU = 64


@dataclass(frozen=True)
class GraphVariant:
    """Which exact restructuring of the reference a generator graph is: "reference", or "fast" with its first
    mask conv as a conv or a lookup, and its convs `fused` (a block's mask convs as one, gamma|beta as one, split
    after: GPUs) or one each (CPU providers, where a split is a copy); or "sparse": the fast graph with the
    modulation computed densely only near class boundaries (models.sparse), a block running dense where its band
    covers more than `dense_above` of its pixels (the dense form: the fast one of that mask conv and fusion).

    The one home of the idea: parsed from text (`parse`, `label`), chosen per target (`for_target`), recorded in
    the metadata (`to_dict` / `from_dict`) and handed to the graph module (models.FastGenerator)."""

    graph: str = "reference"
    mask_conv: str | None = None  # fast / sparse: "conv" (default) or "lookup"
    fused: bool | None = None  # fast / sparse: True (default) or False
    dense_above: float | None = None  # sparse: the band fraction above which a block runs dense (DENSE_ABOVE)

    def __post_init__(self) -> None:
        if self.graph not in GRAPHS:
            raise ValueError(f"graph={self.graph!r}; accepted: {', '.join(GRAPHS)}")
        if self.graph == "reference":
            if (self.mask_conv, self.fused, self.dense_above) != (None, None, None):
                raise ValueError("the reference graph has no mask-conv, fusion or sparsity choice")
            return
        object.__setattr__(self, "mask_conv", self.mask_conv or "conv")
        if self.mask_conv not in MASK_CONVS:
            raise ValueError(f"mask_conv={self.mask_conv!r}; accepted: {', '.join(MASK_CONVS)}")
        if self.fused not in (None, True, False):
            raise ValueError(f"fused={self.fused!r}; accepted: True, False or None (by target)")
        object.__setattr__(self, "fused", True if self.fused is None else self.fused)
        if self.graph != "sparse":
            if self.dense_above is not None:
                raise ValueError(f"dense_above={self.dense_above!r} is the sparse graph's threshold; the {self.graph} "
                                 f"graph has none")
            return
        value = DENSE_ABOVE if self.dense_above is None else self.dense_above
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"dense_above={value!r}; accepted: a band fraction from 0 (always dense) to 1 (always "
                             f"sparse), default {DENSE_ABOVE}")
        object.__setattr__(self, "dense_above", float(value))

    @property
    def kind(self) -> GraphKind:
        return GRAPH_KINDS[self.graph]

    @property
    def label(self) -> str:
        """"reference", "fast:conv", "fast:lookup+fused", "sparse:conv@0.3", ... (what `parse` reads)."""
        if self.graph == "reference":
            return self.graph
        threshold = f"@{self.dense_above:g}" if self.graph == "sparse" and self.dense_above != DENSE_ABOVE else ""
        return f"{self.graph}:{self.mask_conv}{'+fused' if self.fused else ''}{threshold}"

    @classmethod
    def parse(cls, text: str) -> GraphVariant:
        """A variant from its label: "reference", or GRAPH:MASK_CONV[+fused] with the sparse graph's threshold as
        a suffix @FRACTION."""
        head, at, threshold = text.partition("@")
        graph, _, rest = head.partition(":")
        mask_conv, plus, fused = rest.partition("+")
        if graph not in IDS_GRAPHS or (plus and fused != "fused") or (at and graph != "sparse"):
            if text == "reference":
                return cls()
            raise ValueError(f"graph variant {text!r}; accepted: {', '.join(VARIANT_NAMES)}, each but reference "
                             f"with +fused, the sparse ones with @FRACTION (its dense threshold)")
        try:
            dense_above = float(threshold) if at else None
        except ValueError:
            raise ValueError(f"graph variant {text!r}: the threshold after @ is a band fraction, e.g. "
                             f"sparse:conv@0.5") from None
        return cls(graph, mask_conv or "conv", bool(plus), dense_above)

    @classmethod
    def for_target(cls, graph: str, cfg, device: str, *, mask_conv: str = "auto", fused: bool | None = None,
                   dense_above: float | None = None) -> GraphVariant:
        """The variant of `graph` for a model `cfg` run on `device` ("cpu" or "cuda"); "auto" / None take the
        target's choice: on GPUs the conv form, fused; on the CPU one conv each, the lookup from
        LOOKUP_MIN_CHANNELS_CPU mask channels."""
        if graph not in GRAPHS:
            raise ValueError(f"graph={graph!r}; accepted: {', '.join(GRAPHS)}")
        if graph == "reference":
            return cls()
        if mask_conv not in ("auto", *MASK_CONVS):
            raise ValueError(f"mask_conv={mask_conv!r}; accepted: auto, {', '.join(MASK_CONVS)}")
        gpu = device == "cuda"
        if mask_conv == "auto":
            mask_conv = "conv" if gpu or cfg.semantic_nc < LOOKUP_MIN_CHANNELS_CPU else "lookup"
        return cls(graph, mask_conv, gpu if fused is None else fused, dense_above)

    def broadcasts_label(self, cfg) -> bool:
        """Whether the graph takes one mask for N styles: an ids-level graph of a style model."""
        return self.kind.ids_level and cfg.use_vae

    def to_dict(self) -> dict[str, Any]:
        return {"graph": self.graph, "mask_conv": self.mask_conv, "fused": self.fused, "dense_above": self.dense_above}

    @classmethod
    def from_dict(cls, data: Any, where: str = "graph variant") -> GraphVariant:
        if not isinstance(data, dict) or set(data) - {"graph", "mask_conv", "fused", "dense_above"}:
            raise ValueError(f"{where}: expected an object with graph, mask_conv, fused and dense_above, got {data!r}")
        return cls(**data)


REFERENCE = GraphVariant()
VARIANT_NAMES = ("reference", *(f"{g}:{m}" for g in IDS_GRAPHS for m in MASK_CONVS))  # what `parse` reads (+fused)


# --------------------------------------------------------------------------------------------- tensors
# Every IO tensor of the contract: (name, dtype) -> the axes' letters and, per axis, the dynamic dimension
# it may be (None: fixed, its size set by the model: channels, z_dim).
_TENSORS: dict[tuple[str, str], tuple[str, tuple[str | None, ...]]] = {
    (LABEL, "int32"): ("NCHW", (BATCH, None, HEIGHT, WIDTH)),
    (INSTANCE, "int32"): ("NCHW", (BATCH, None, HEIGHT, WIDTH)),
    (Z, "float32"): ("NC", (BATCH, None)),
    (IMAGE, "float32"): ("NCHW", (BATCH, None, HEIGHT, WIDTH)),
    (IMAGE, "uint8"): ("NHWC", (BATCH, HEIGHT, WIDTH, None)),
    (STYLE, "uint8"): ("NHWC", (BATCH, STYLE_HEIGHT, STYLE_WIDTH, None)),
    (STYLE, "float32"): ("NCHW", (BATCH, None, STYLE_HEIGHT, STYLE_WIDTH)),
    (MU, "float32"): ("NC", (BATCH, None)),
    (LOGVAR, "float32"): ("NC", (BATCH, None)),
}
_ALIASES = {(LABEL, 0): LABEL_BATCH, (INSTANCE, 0): LABEL_BATCH}  # another name an axis may have
GENERATOR_INPUTS = (LABEL, INSTANCE, Z)
ENCODER_INPUTS = (STYLE,)
ENCODER_OUTPUTS = (MU, LOGVAR)


@dataclass(frozen=True)
class TensorSpec:
    """One IO tensor: its name, numpy dtype name and shape, where a dynamic dimension is its name (str)."""

    name: str
    dtype: str  # int32, float32, uint8
    shape: tuple[int | str, ...]

    @property
    def layout(self) -> str:
        """The axes' letters: NCHW, NHWC or NC."""
        return _entry(self.name, self.dtype)[0]

    @property
    def axes(self) -> dict[str, int]:
        """Dynamic dimension name -> its axis, for the dimensions that are dynamic in this spec."""
        return {d: axis for axis, d in enumerate(self.shape) if isinstance(d, str)}

    def axis_of(self, dim: str) -> int | None:
        """The axis that is dimension `dim` (dynamic or fixed in this spec), None where the tensor has none."""
        dims = _entry(self.name, self.dtype)[1]
        return dims.index(dim) if dim in dims else None

    def shape_at(self, ranges: dict[str, Range], which: str) -> tuple[int, ...]:
        """The concrete shape with every dynamic dimension at its range's `which` ("min", "opt" or "max")."""
        return tuple(getattr(ranges[d], which) if isinstance(d, str) else d for d in self.shape)

    def profile(self, ranges: dict[str, Range]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) shapes: a TensorRT optimization profile entry."""
        return tuple(self.shape_at(ranges, which) for which in ("min", "opt", "max"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(data["name"], data["dtype"], tuple(data["shape"]))


def _entry(name: str, dtype: str) -> tuple[str, tuple[str | None, ...]]:
    try:
        return _TENSORS[(name, dtype)]
    except KeyError:
        accepted = ", ".join(f"{n} {d}" for n, d in _TENSORS)
        raise ValueError(f"IO tensor {name!r} {dtype} is not part of the gaugan-sdk contract (accepted: "
                         f"{accepted})") from None


def _spec(name: str, dtype: str, ranges: dict[str, Range], fixed: dict[str, int],
          aliased: bool = False) -> TensorSpec:
    """A spec of the table: each dynamic-capable axis is its name (its alias with `aliased`) where its range is
    dynamic, else the fixed size; the other axes take `fixed` by axis letter."""
    letters, dims = _entry(name, dtype)
    shape = []
    for axis, (letter, d) in enumerate(zip(letters, dims)):
        d = _ALIASES.get((name, axis), d) if aliased and d else d
        shape.append((d if ranges[d].dynamic else ranges[d].min) if d else fixed[letter])
    return TensorSpec(name, dtype, tuple(shape))


def generator_io(cfg, shapes: Shapes, uint8_output: bool = False,
                 graph: str = "reference") -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of a generator graph (`graph`: one of GRAPHS) for `cfg` over resolved `shapes`."""
    if graph not in GRAPHS:
        raise ValueError(f"graph={graph!r}; accepted: {', '.join(GRAPHS)}")
    ranges = dim_ranges("generator", shapes.batch, shapes.height, shapes.width)
    broadcast = GRAPH_KINDS[graph].ids_level and cfg.use_vae  # GraphVariant.broadcasts_label
    inputs = [_spec(LABEL, "int32", ranges, {"C": 1}, broadcast)]
    if cfg.use_instance:
        inputs.append(_spec(INSTANCE, "int32", ranges, {"C": 1}, broadcast))
    if cfg.use_vae:
        inputs.append(_spec(Z, "float32", ranges, {"C": cfg.z_dim}))
    image = _spec(IMAGE, "uint8" if uint8_output else "float32", ranges, {"C": 3})
    return tuple(inputs), (image,)


def encoder_io(z_dim: int, batch: Range, float_input: bool = False) -> tuple[tuple[TensorSpec, ...],
                                                                              tuple[TensorSpec, ...]]:
    """(inputs, outputs) of a style encoder graph: any style size in STYLE_SIZE."""
    ranges = dim_ranges("encoder", batch, STYLE_SIZE, STYLE_SIZE)
    style = _spec(STYLE, "float32" if float_input else "uint8", ranges, {"C": 3})
    return (style,), tuple(_spec(name, "float32", ranges, {"C": z_dim}) for name in ENCODER_OUTPUTS)


def spec_from_runtime(name: str, dtype: str, shape: tuple) -> TensorSpec:
    """A TensorSpec from what a runtime reports of a tensor: dynamic dimensions (None, -1, or any symbol name)
    take the contract's name for their axis."""
    letters, dims = _entry(name, dtype)
    if len(dims) != len(shape):
        raise ValueError(f"IO tensor {name!r} {dtype} {tuple(shape)} has rank {len(shape)}; the contract's "
                         f"{name} is {letters} (rank {len(dims)})")
    out = []
    for axis, (dim, named) in enumerate(zip(shape, dims)):
        fixed = isinstance(dim, int) and dim >= 0
        if not fixed and named is None:
            raise ValueError(f"IO tensor {name!r} has a dynamic dimension where the contract fixes one: {shape}")
        alias = _ALIASES.get((name, axis))
        kept = alias is not None and dim == alias  # a runtime that reports the alias keeps it
        out.append(int(dim) if fixed else alias if kept else named)
    return TensorSpec(name, dtype, tuple(out))


def role_of(input_names: list[str]) -> str:
    """"generator" or "encoder" from an artifact's input names, or a ValueError saying what they would be."""
    if list(input_names) == list(ENCODER_INPUTS):
        return "encoder"
    if input_names and input_names[0] == LABEL and set(input_names) <= set(GENERATOR_INPUTS):
        return "generator"
    raise ValueError(f"inputs {list(input_names)} do not tell what this artifact is (a generator takes "
                     f"{LABEL}[, {INSTANCE}][, {Z}]; a style encoder takes {STYLE})")

