"""gaugan-export: a SPADE/GauGAN checkpoint (ours, or NVlabs') -> a verified ONNX model (fp32 / fp16 / int8
Q/DQ), TensorRT plan or AOTInductor package of the exact fast graph, with its metadata sidecar.

examples:
  gaugan-export --checkpoint runs/00003-city/checkpoints/iter_0050000.pt --engine fp16      # plan, or ONNX
  gaugan-export --checkpoint checkpoints/cityscapes_pretrained --preset cityscapes --format onnx \\
                --engine int8 --calib-dir data/labels --output engines/city8.onnx
  gaugan-export --checkpoint ckpt.pt --format engine --min-shape label:1x1x256x512 \\
                --opt-shape label:4x1x256x512 --max-shape label:8x1x256x512          # trtexec's shapes
  gaugan-export --checkpoint ckpt.pt --format pt2 --batch 8                     # AOTInductor, this device

Every artifact is verified against eager PyTorch (onnx, pt2; a plan through its ONNX) and staged: files move into
place only when every stage passed. A thin argparse layer over export.export_checkpoint (export/api.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.contract import GRAPHS, LABEL, MASK_CONVS
from gaugan_sdk.kinds import EXPORT_FORMATS
from gaugan_sdk.metadata import PRECISIONS, ArtifactMetadata

from .api import export_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from .calibration import INT8_MASKS, INT8_MIN_MASKS, VERIFY_MASKS
    from .int8 import MAX_FP16_FRACTION
    from .verify import DEFAULT_GATES

    p = argparse.ArgumentParser(prog="gaugan-export", description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]), formatter_class=_Formatter)
    p.add_argument("--checkpoint", required=True, help="our checkpoint file, or an NVlabs folder / *_net_G.pth")
    p.add_argument("--preset", choices=sorted(GeneratorConfig.PRESETS),
                   help="the model an NVlabs checkpoint is (ours store their config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field, e.g. --set use_vae=true --set ngf=32")
    p.add_argument("--engine", choices=PRECISIONS, default="fp32", help="precision inside the graph")
    p.add_argument("--format", choices=sorted(EXPORT_FORMATS),
                   help="artifact kind: trt / engine (a TensorRT plan, .plan / .engine), onnx, pt2 (default: the "
                        "--output suffix's, else trt where TensorRT is installed, else onnx with a note)")
    p.add_argument("--output", help="artifact path (default engines/<checkpoint name><suffix>, the folder created)")
    p.add_argument("--quiet", action="store_true", help="print only errors and the final summary")
    shapes = p.add_argument_group("shapes (trtexec style: BxHxW, or the label input as label:Bx1xHxW)")
    shapes.add_argument("--batch", type=int, help="dynamic batch 1..N (opt N)")
    shapes.add_argument("--min-shape", help="e.g. 1x256x512 or label:1x1x256x512")
    shapes.add_argument("--opt-shape", help="e.g. 4x256x512")
    shapes.add_argument("--max-shape", help="e.g. 8x256x512")
    shapes.add_argument("--dynamic-size", action="store_true",
                        help="accept any H, W in multiples of the stride (default range: 2*stride .. 2x the size)")
    p.add_argument("--uint8-output", action="store_true", help="in-graph conversion to uint8 (N, H, W, 3) RGB")
    p.add_argument("--graph", choices=GRAPHS, default="fast",
                   help="fast (default): exact restructuring (batch norm folded into the modulation, one mask conv "
                        "per block, one mask for N styles); sparse: the fast graph with the modulation computed "
                        "densely only near class boundaries (fp32 ONNX, for ONNX Runtime on the CPU: about half the "
                        "MACs on typical maps, the same image); reference: one op per reference op")
    p.add_argument("--mask-conv", choices=("auto", *MASK_CONVS), default="auto",
                   help="the fast graph's first mask conv: a conv of the one-hot, a table lookup, or auto (by "
                        "target: lookup on the CPU for many labels, conv on GPUs)")
    p.add_argument("--fused", action=argparse.BooleanOptionalAction, default=None,
                   help="the fast graph's convs fused, split after (default by target: on GPUs, not on the CPU)")
    calib = p.add_argument_group("calibration / verification masks")
    calib.add_argument("--calib-dir", help="folder of label-id PNGs (default: procedural scenes, with a warning)")
    calib.add_argument("--calib-count", type=int,
                       help=f"masks to calibrate and verify on (default {INT8_MASKS} for int8, else {VERIFY_MASKS}; "
                            f"int8 warns below {INT8_MIN_MASKS})")
    calib.add_argument("--int8-max-fp16", type=float, default=MAX_FP16_FRACTION, metavar="FRACTION",
                       help=f"int8: the largest share of convs the sensitivity search may keep in fp16 (default "
                            f"{MAX_FP16_FRACTION})")
    trt = p.add_argument_group("TensorRT")
    trt.add_argument("--timing-cache", help="timing cache file, read before and written after the build")
    trt.add_argument("--workspace", type=float, default=4.0, help="builder workspace limit in GB")
    check = p.add_argument_group("verification against eager PyTorch fp32")
    check.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                       help="on by default for onnx and pt2; for trt it checks the ONNX the plan is built from")
    fp32 = DEFAULT_GATES["fp32"]
    check.add_argument("--atol", type=float, help=f"fp32 gate: |difference| <= atol + rtol |eager| (default "
                                                  f"{fp32['atol']:g})")
    check.add_argument("--rtol", type=float, help=f"(default {fp32['rtol']:g})")
    check.add_argument("--min-psnr", type=float, help="fp16 / int8 gate in dB, also the conversion's target (default "
                       + ", ".join(f"{p} {DEFAULT_GATES[p]['min_psnr']:g}" for p in ("fp16", "int8")) + ")")
    p.add_argument("--triton-repo", help="also write a Triton model repository (onnx / trt) into this folder")
    p.add_argument("--triton-instances", type=int, default=1,
                   help="model instances per device in the Triton configs (>= 1)")
    p.add_argument("--triton-device", choices=("auto", "gpu", "cpu"), default="auto",
                   help="Triton instance kind: auto (plans on the GPU; ONNX on Triton's GPUs, else its CPU), gpu, cpu")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        shapes = _shape_options(args)
        result = export_checkpoint(
            args.checkpoint, format=args.format, precision=args.engine, output=args.output, preset=args.preset,
            overrides=args.overrides, dynamic_size=args.dynamic_size, uint8_output=args.uint8_output,
            graph=args.graph, mask_conv=args.mask_conv, fused=args.fused,
            calib_dir=args.calib_dir, calib_count=args.calib_count, int8_max_fp16=args.int8_max_fp16,
            timing_cache=args.timing_cache, workspace_gb=args.workspace, verify=args.verify, atol=args.atol,
            rtol=args.rtol, min_psnr=args.min_psnr, triton_repo=args.triton_repo,
            triton_instances=args.triton_instances, triton_device=args.triton_device, verbose=not args.quiet,
            **shapes)
    except (ValueError, TypeError, FileNotFoundError, PermissionError, RuntimeError, ImportError) as e:
        print(f"gaugan-export: error: {e}", file=sys.stderr)
        return 2
    print(f"\nwrote {', '.join(str(p) for p in result.artifacts)}   ({result.seconds:.1f} s)")
    print(next_steps(result.output, result.metadata[0]))
    if args.triton_repo:
        models = [p.name for p in result.artifacts if p.parent == Path(args.triton_repo)]
        print(f"serve it: tritonserver --model-repository={args.triton_repo}   (models: {', '.join(models)})")
    return 0


def _shape_options(args: argparse.Namespace) -> dict:
    """--batch N, or trtexec-style --min-shape/--opt-shape/--max-shape BxHxW, as export_checkpoint's ranges."""
    if args.batch is not None and (args.min_shape or args.opt_shape or args.max_shape):
        raise ValueError("give --batch or --min-shape/--opt-shape/--max-shape, not both")
    if args.batch is not None:
        return {"batch": args.batch}
    if not (args.min_shape or args.opt_shape or args.max_shape):
        return {}
    if not (args.min_shape and args.opt_shape and args.max_shape):
        raise ValueError("--min-shape, --opt-shape and --max-shape go together")
    low, opt, high = (_parse_shape(s) for s in (args.min_shape, args.opt_shape, args.max_shape))
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


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """--help with the examples as written, and each option's default where it has one its help does not name."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def next_steps(output: Path, meta: ArtifactMetadata) -> str:
    lines = ["\nrun it:", "  from gaugan_sdk import Synthesizer",
             f"  image = Synthesizer(\"{output}\").run(label)   # label: (H, W) class ids -> (H, W, 3) uint8 RGB"]
    if meta.format == "tensorrt":
        from .tensorrt import trtexec_command

        lines += ["the same plan with trtexec:", "  " + trtexec_command(output.with_suffix(".onnx"), output, meta)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
