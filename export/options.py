"""ExportOptions: every choice of an export in one validated record, checked once with the messages users read.

    from export import ExportOptions, export_checkpoint
    options = ExportOptions(format="onnx", precision="fp16", batch=(1, 4, 8))
    export_checkpoint("ckpt.pt", options)                  # or export_checkpoint("ckpt.pt", format="onnx", ...)
    ExportOptions.from_dict(json.loads(text))              # every sidecar records `export` as options.to_dict()

The command line (export/cli.py) is built from the fields: each field's metadata gives its flag, group and help,
and its choices come from the data they name (gaugan_sdk.kinds, gaugan_sdk.precisions, contract.GRAPH_KINDS).
What depends on the machine or the files (TensorRT or ONNX Runtime installed, the output folder) is checked when
the export is planned (export/api.py), still before any work.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gaugan_sdk.config import GeneratorConfig, parse_overrides
from gaugan_sdk.contract import DENSE_ABOVE, GRAPHS, MASK_CONVS, Range
from gaugan_sdk.kinds import EXPORT_FORMATS, export_kind
from gaugan_sdk.precisions import FILE_PRECISIONS, PRECISIONS
from gaugan_sdk.presets import PRESETS

from .calibration import INT8_MASKS, INT8_MIN_MASKS, VERIFY_MASKS
from .int8 import MAX_FP16_FRACTION

__all__ = ["ExportOptions", "TRITON_DEVICES"]

TRITON_DEVICES = ("auto", "gpu", "cpu")


def _option(default: Any = None, help: str = "", *, flag: str | None = None, group: str | None = None,
            choices: Any = None, metavar: str | None = None, action: str | None = None, cli: bool = True,
            factory: Any = None, cli_type: Any = None) -> Any:
    """A field with what the command line needs to offer it: `flag` (default --<name with dashes>), `group`,
    `choices`, `action` ("flag": store_true; "tristate": --x / --no-x / unset; "inverse": the flag stores False;
    "append": repeatable), `cli=False` for fields the command line sets another way, `cli_type` where the value
    typed differs from the field's type (a batch N for a Range)."""
    meta = dict(help=help, flag=flag, group=group, choices=choices, metavar=metavar, action=action, cli=cli,
                cli_type=cli_type)
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ExportOptions:
    """How to export a checkpoint (everything but the checkpoint itself). Constructing one checks every value;
    `export_checkpoint` takes one, keywords, or both (keywords replace the fields they name)."""

    format: str | None = _option(
        help="artifact kind, one of the formats tabled below (default: the --output suffix's, else trt where "
             "TensorRT is installed, else onnx with a note)",
        choices=sorted(EXPORT_FORMATS))
    precision: str = _option("fp32", "precision inside the graph", flag="--engine", choices=FILE_PRECISIONS)
    output: Path | None = _option(help="artifact path (default engines/<checkpoint name><suffix>, the folder "
                                       "created)")
    preset: str | None = _option(help="the model an NVlabs checkpoint is (ours store their config)",
                                 choices=sorted(PRESETS))
    overrides: dict[str, Any] = _option(
        help="override a preset field, e.g. --set use_vae=true --set ngf=32", flag="--set", metavar="KEY=VALUE",
        action="append", factory=dict)
    batch: Range | None = _option(help="dynamic batch 1..N (opt N)", group="shapes", metavar="N", cli_type=int)
    height: Range | None = _option(cli=False)  # the command line: --min-shape / --opt-shape / --max-shape
    width: Range | None = _option(cli=False)
    dynamic_size: bool = _option(False, "accept any H, W in multiples of the stride (default range: 2*stride .. "
                                        "2x the size)", group="shapes", action="flag")
    uint8_output: bool = _option(False, "in-graph conversion to uint8 (N, H, W, 3) RGB", action="flag")
    graph: str = _option(
        "fast", "fast (default): exact restructuring (batch norm folded into the modulation, one mask conv per "
                "block, one mask for N styles); sparse: the fast graph with the modulation computed densely only "
                "near class boundaries (fp32, for CPUs: about half the MACs on typical maps, the same image); "
                "reference: one op per reference op; auto: the target's (a CPU format: this CPU's plan, "
                "gaugan_sdk.cpu; else fast)", choices=(*GRAPHS, "auto"))
    mask_conv: str = _option("auto", "the fast graph's first mask conv: a conv of the one-hot, a table lookup, or "
                                     "auto (by target: lookup on the CPU for many labels, conv on GPUs)",
                             choices=("auto", *MASK_CONVS))
    fused: bool | None = _option(help="the fast graph's convs fused, split after (default by target: on GPUs, not "
                                      "on the CPU)", action="tristate")
    dense_above: float | None = _option(
        help=f"the sparse graph's threshold: a block runs dense where its band covers more than this fraction of "
             f"its pixels (default {DENSE_ABOVE})", metavar="FRACTION")
    calib_dir: Path | None = _option(help="folder of label-id PNGs (default: procedural scenes, with a warning)",
                                     group="calibration / verification masks")
    calib_count: int | None = _option(help=f"masks to calibrate and verify on (default {INT8_MASKS} for int8, else "
                                           f"{VERIFY_MASKS}; int8 warns below {INT8_MIN_MASKS})",
                                      group="calibration / verification masks")
    int8_max_fp16: float | None = _option(help=f"int8: the largest share of convs the sensitivity search may keep "
                                               f"in fp16 (default {MAX_FP16_FRACTION})",
                                          group="calibration / verification masks", metavar="FRACTION")
    timing_cache: Path | None = _option(help="timing cache file, read before and written after the build",
                                        group="TensorRT")
    workspace_gb: float = _option(4.0, "builder workspace limit in GB", flag="--workspace", group="TensorRT")
    verify: bool | None = _option(help="check every artifact against eager PyTorch fp32 (default: by format: "
                                       "on for onnx and pt2; for trt it checks the ONNX the plan is built from)",
                                  group="verification against eager PyTorch fp32", action="tristate")
    atol: float | None = _option(help="fp32 gate: |difference| <= atol + rtol |eager| (default "
                                      f"{PRECISIONS['fp32'].atol:g})", group="verification against eager PyTorch fp32")
    rtol: float | None = _option(help=f"(default {PRECISIONS['fp32'].rtol:g})",
                                 group="verification against eager PyTorch fp32")
    min_psnr: float | None = _option(
        help="fp16 / int8 gate in dB, also the conversion's target (default "
             + ", ".join(f"{p} {PRECISIONS[p].min_psnr:g}" for p in ("fp16", "int8")) + ")",
        group="verification against eager PyTorch fp32")
    triton_repo: Path | None = _option(help="also write a Triton model repository (formats Triton serves) into "
                                            "this folder", group="Triton")
    triton_instances: int = _option(1, "model instances per device in the Triton configs (>= 1)", group="Triton")
    triton_device: str = _option("auto", "Triton instance kind: auto (plans on the GPU; ONNX on Triton's GPUs, else "
                                         "its CPU), gpu, cpu", group="Triton", choices=TRITON_DEVICES)
    verbose: bool = _option(True, "print only errors and the final summary", flag="--quiet", action="inverse")

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _CHECKS[f.name](getattr(self, f.name), f.name))
        if self.format is not None and self.graph != "auto":  # the combination, where both are known already
            refusal = export_kind(self.format).refusal(self.precision, self.graph)
            if refusal:
                raise ValueError(refusal)
        if self.graph not in ("sparse", "auto") and self.dense_above is not None:
            raise ValueError(f"dense_above={self.dense_above!r} is the sparse graph's threshold; graph={self.graph!r}"
                             f" has none")
        if self.graph == "reference" and (self.mask_conv != "auto" or self.fused is not None):
            raise ValueError(f"mask_conv={self.mask_conv!r}, fused={self.fused!r}: the reference graph has no "
                             f"mask-conv or fusion choice (graph='fast' or 'sparse' has)")

    # ---------------------------------------------------------------- construction
    @classmethod
    def of(cls, options: ExportOptions | Mapping[str, Any] | None = None, **keywords: Any) -> ExportOptions:
        """`options` (an ExportOptions, a dict of fields, or None) with `keywords` replacing the fields they name."""
        if options is None:
            base: dict[str, Any] = {}
        elif isinstance(options, ExportOptions):
            base = {f.name: getattr(options, f.name) for f in fields(cls)}
        elif isinstance(options, Mapping):
            base = dict(options)
        else:
            raise TypeError(f"options={options!r}; accepted: an ExportOptions, a dict of its fields, or None")
        given = {**base, **keywords}
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown export option(s) {', '.join(map(repr, unknown))}; accepted: "
                            f"{', '.join(f.name for f in fields(cls))}")
        return cls(**given)

    def replace(self, **changes: Any) -> ExportOptions:
        return ExportOptions.of(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: paths as strings, ranges as [min, opt, max]."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_list() if isinstance(value, Range) else str(value) if isinstance(value, Path) \
                else dict(value) if isinstance(value, dict) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportOptions:
        if not isinstance(data, Mapping):
            raise TypeError(f"export options are read from a JSON object, got {type(data).__name__}")
        return cls.of(data)


# ---------------------------------------------------------------------------------------------- value checks
def _choice(accepted: Sequence, optional: bool = False):
    def check(value, name):
        if value is None and optional:
            return None
        if not isinstance(value, str) or value not in accepted:
            raise ValueError(f"{name}={value!r}; accepted: {', '.join(accepted)}")
        return value
    return check


def _flag(optional: bool = False):
    def check(value, name):
        if value is None and optional:
            return None
        if not isinstance(value, bool):
            raise TypeError(f"{name}={value!r}; accepted: True or False{' or None (by target)' if optional else ''}")
        return value
    return check


def _path(value, name):
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise TypeError(f"{name}={value!r}; accepted: a path (str or os.PathLike) or None")
    return Path(value)


def _number(minimum: float, *, above: bool = False, maximum: float | None = None, optional: bool = True):
    """A finite real number >= minimum (> with `above`), <= maximum."""
    def check(value, name):
        if value is None and optional:
            return None
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not real or not math.isfinite(value) or value < minimum or (above and value == minimum) \
                or (maximum is not None and value > maximum):
            bound = f"{'>' if above else '>='} {minimum:g}" + (f" and <= {maximum:g}" if maximum is not None else "")
            raise ValueError(f"{name}={value!r}; accepted: a finite number {bound}")
        return float(value)
    return check


def _count(minimum: int, optional: bool = True):
    def check(value, name):
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name}={value!r}; accepted: an int >= {minimum}")
        return int(value)
    return check


def _range(value, name):
    """None, N (the batch: dynamic 1..N optimized for N; a size: fixed) or (min, opt, max)."""
    if value is None or isinstance(value, Range):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{name} {value}: must be >= 1")
        return Range(1, int(value), int(value)) if name == "batch" else Range.fixed(int(value))
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}={value!r}; accepted: an int, a (min, opt, max) triple of ints, or None")
    return Range.of(tuple(value), f"{name} range")


def _overrides(value, name):
    if value is None:
        return {}
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return parse_overrides(list(value))
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}={value!r}; accepted: a dict of GeneratorConfig fields or 'KEY=VALUE' strings")
    known = {f.name for f in fields(GeneratorConfig)}
    unknown = sorted(map(str, set(value) - known))
    if unknown:
        raise ValueError(f"{name}: unknown GeneratorConfig field(s) {', '.join(unknown)}; accepted: "
                         f"{', '.join(sorted(known))}")
    return dict(value)


_CHECKS = {
    "format": _choice(sorted(EXPORT_FORMATS), optional=True), "precision": _choice(FILE_PRECISIONS),
    "output": _path, "preset": _choice(sorted(PRESETS), optional=True), "overrides": _overrides,
    "batch": _range, "height": _range, "width": _range, "dynamic_size": _flag(), "uint8_output": _flag(),
    "graph": _choice((*GRAPHS, "auto")), "mask_conv": _choice(("auto", *MASK_CONVS)), "fused": _flag(optional=True),
    "dense_above": _number(0.0, maximum=1.0), "calib_dir": _path, "calib_count": _count(1),
    "int8_max_fp16": _number(0.0, maximum=1.0), "timing_cache": _path,
    "workspace_gb": _number(0.0, above=True, optional=False), "verify": _flag(optional=True),
    "atol": _number(0.0), "rtol": _number(0.0), "min_psnr": _number(0.0, above=True), "triton_repo": _path,
    "triton_instances": _count(1, optional=False), "triton_device": _choice(TRITON_DEVICES), "verbose": _flag(),
}
assert set(_CHECKS) == {f.name for f in dataclasses.fields(ExportOptions)}, "every option has its check"
