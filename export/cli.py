"""gaugan-export: a SPADE/GauGAN checkpoint (ours, or NVlabs') -> a verified ONNX model (fp32 / fp16 / int8
Q/DQ), TensorRT plan, OpenVINO IR or AOTInductor package of the exact fast graph, with its metadata sidecar.

examples:
  gaugan-export --checkpoint runs/00003-city/checkpoints/iter_0050000.pt --engine fp16      # plan, or ONNX
  gaugan-export --checkpoint checkpoints/cityscapes_pretrained --preset cityscapes --format onnx \\
                --engine int8 --calib-dir data/labels --output engines/city8.onnx
  gaugan-export --checkpoint ckpt.pt --format engine --min-shape label:1x1x256x512 \\
                --opt-shape label:4x1x256x512 --max-shape label:8x1x256x512          # trtexec's shapes
  gaugan-export --checkpoint ckpt.pt --format pt2 --batch 8                     # AOTInductor, this device
  gaugan-export --checkpoint ckpt.pt --format openvino --graph auto             # OpenVINO IR, this CPU's graph

Every artifact is verified against eager PyTorch (onnx, openvino, pt2; a plan through its ONNX) and staged:
files move into place only when every stage passed. The options are export.ExportOptions' fields
(export/options.py), which this command line is built from; export.export_checkpoint (export/api.py) runs them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path

from gaugan_sdk.contract import LABEL
from gaugan_sdk.kinds import KINDS
from gaugan_sdk.metadata import ArtifactMetadata

from .api import export_checkpoint
from .options import ExportOptions

ERRORS = (ValueError, TypeError, FileNotFoundError, PermissionError, RuntimeError, ImportError, OSError)


def build_parser() -> argparse.ArgumentParser:
    """The command line, one option per ExportOptions field (its metadata: flag, group, help, choices), plus the
    checkpoint and trtexec's shape flags for batch / height / width."""
    p = argparse.ArgumentParser(prog="gaugan-export", description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]) + "\n\n" + _formats(),
                                formatter_class=_Formatter)
    p.add_argument("--checkpoint", required=True, help="our checkpoint file, or an NVlabs folder / *_net_G.pth")
    groups: dict[str | None, argparse._ActionsContainer] = {None: p}
    hints = typing.get_type_hints(ExportOptions)
    for f in dataclasses.fields(ExportOptions):
        meta = f.metadata
        if not meta["cli"]:
            continue
        if meta["group"] not in groups:
            groups[meta["group"]] = p.add_argument_group(meta["group"])
        flag = meta["flag"] or f"--{f.name.replace('_', '-')}"
        kwargs = dict(dest=f.name, help=meta["help"], default=argparse.SUPPRESS)
        action = meta["action"]
        if action == "flag":
            kwargs["action"] = "store_true"
        elif action == "inverse":
            kwargs["action"] = "store_false"
        elif action == "tristate":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif action == "append":
            kwargs.update(action="append", metavar=meta["metavar"])
        else:
            kwargs.update(type=meta["cli_type"] or _argument_type(hints[f.name]), metavar=meta["metavar"])
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
        groups[meta["group"]].add_argument(flag, **kwargs)
    shapes = groups["shapes"]
    shapes.title = "shapes (trtexec style: BxHxW, or the label input as label:Bx1xHxW)"
    for which, batch in (("min", 1), ("opt", 4), ("max", 8)):
        shapes.add_argument(f"--{which}-shape", help=f"e.g. {batch}x256x512 or label:{batch}x1x256x512 (the three "
                                                      f"go together)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def options_from_args(args: argparse.Namespace) -> ExportOptions:
    """ExportOptions from parsed arguments: the fields given, and trtexec's shapes as batch / height / width."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(ExportOptions) if hasattr(args, f.name)}
    return ExportOptions(**given, **_shape_options(args, given.get("batch")))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = options_from_args(args)
        result = export_checkpoint(args.checkpoint, options)
    except ERRORS as e:
        print(f"gaugan-export: error: {e}", file=sys.stderr)
        return 2
    print(f"\nwrote {', '.join(str(p) for p in result.artifacts)}   ({result.seconds:.1f} s)")
    print(next_steps(result.output, result.metadata[0]))
    if options.triton_repo:
        models = [p.name for p in result.artifacts if p.parent == Path(options.triton_repo)]
        print(f"serve it: tritonserver --model-repository={options.triton_repo}   (models: {', '.join(models)})")
    return 0


def _argument_type(hint):
    """The argparse type of a field's annotation (its non-None type)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = args[0]
    return {int: int, float: float, Path: str}.get(base, str) if base is not object else str


def _shape_options(args: argparse.Namespace, batch) -> dict:
    """trtexec-style --min-shape/--opt-shape/--max-shape BxHxW as batch, height and width ranges."""
    shapes = (args.min_shape, args.opt_shape, args.max_shape)
    if batch is not None and any(shapes):
        raise ValueError("give --batch or --min-shape/--opt-shape/--max-shape, not both")
    if not any(shapes):
        return {}
    if not all(shapes):
        raise ValueError("--min-shape, --opt-shape and --max-shape go together")
    low, opt, high = (_parse_shape(s) for s in shapes)
    return {"batch": (low[0], opt[0], high[0]), "height": (low[1], opt[1], high[1]),
            "width": (low[2], opt[2], high[2])}


def _parse_shape(text: str) -> tuple[int, int, int]:
    """BxHxW, or trtexec's form for the label input, label:Bx1xHxW (other inputs listed with it, comma-separated,
    take the same batch and size: the label's entry is the one read)."""
    expected = f"shape {text!r}: expected BxHxW (e.g. 1x256x512) or trtexec's label:Bx1xHxW (e.g. label:1x1x256x512)"
    entries = dict(e.rpartition(":")[::2] for e in text.split(",")) if ":" in text else {"": text}
    dims = entries.get(LABEL) if ":" in text else entries[""]
    try:
        values = tuple(int(v) for v in (dims or "").lower().split("x"))
    except ValueError:
        raise ValueError(expected) from None
    if ":" in text and len(values) == 4 and values[1] == 1:
        values = (values[0], *values[2:])
    if len(values) != 3 or min(values) < 1:
        raise ValueError(expected)
    return values


def _formats() -> str:
    """What each format takes, from the kind rows (the same data the API's checks read)."""
    lines, width = ["formats:"], max(len(kind.export_format or "") for kind in KINDS)
    for kind in KINDS:
        if kind.export_format:
            lines.append(f"  {kind.export_format:<{width}} {', '.join(kind.precisions):<16} "
                         f"graphs {', '.join(kind.graphs):<24}"
                         f" on {', '.join(kind.devices):<9} verified {'by default' if kind.verify else 'on request'}"
                         f"{', Triton' if kind.triton else ''}")
    return "\n".join(lines)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """--help with the examples as written, and each option's default where it has one its help does not name."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = next((f.default for f in dataclasses.fields(ExportOptions) if f.name == action.dest), None)
        if default in (None, False, True, dataclasses.MISSING) or "default" in text:
            return text
        return f"{text} (default: {default})"


def next_steps(output: Path, meta: ArtifactMetadata) -> str:
    lines = ["\nrun it:", "  from gaugan_sdk import Synthesizer",
             f"  image = Synthesizer(\"{output}\").run(label)   # label: (H, W) class ids -> (H, W, 3) uint8 RGB"]
    if meta.format == "tensorrt":
        from .tensorrt import trtexec_command

        lines += ["the same plan with trtexec:", "  " + trtexec_command(output.with_suffix(".onnx"), output, meta)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
