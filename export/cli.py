"""gaugan-export: a checkpoint -> verified ONNX (fp32/fp16) or TensorRT plan, with metadata sidecars.

    gaugan-export --checkpoint checkpoints/cityscapes_pretrained --preset cityscapes \\
                  --engine fp16 --format onnx --output engines/city.onnx

Every file is staged in a temporary folder beside the output and moved into place only when every stage
(export, precision, build, verification) passed: a failed export leaves no partial file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gaugan_sdk._io import atomic_write
from gaugan_sdk.config import GeneratorConfig, parse_overrides
from gaugan_sdk.metadata import ArtifactMetadata, sidecar_path, write_sidecar

if TYPE_CHECKING:
    from .precision import PrecisionReport

SUFFIX = {"onnx": ".onnx", "trt": ".plan", "pt2": ".pt2"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from .calibration import INT8_MASKS, INT8_MIN_MASKS, VERIFY_MASKS
    from .int8 import MAX_FP16_FRACTION

    p = argparse.ArgumentParser(prog="gaugan-export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="our checkpoint file, or an NVlabs folder / *_net_G.pth")
    p.add_argument("--preset", choices=sorted(GeneratorConfig.PRESETS),
                   help="the model an NVlabs checkpoint is (ours store their config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field, e.g. --set use_vae=true --set ngf=32")
    p.add_argument("--engine", choices=["fp32", "fp16", "int8"], default="fp32", help="precision inside the graph")
    p.add_argument("--format", choices=sorted(SUFFIX), default="trt", help="artifact kind (default trt)")
    p.add_argument("--output", help="artifact path (default engines/<checkpoint name><suffix>)")
    shapes = p.add_argument_group("shapes (trtexec style; BxHxW for the label input)")
    shapes.add_argument("--batch", type=int, help="dynamic batch 1..N (opt N)")
    shapes.add_argument("--min-shape", help="e.g. 1x256x512")
    shapes.add_argument("--opt-shape")
    shapes.add_argument("--max-shape")
    shapes.add_argument("--dynamic-size", action="store_true",
                        help="accept any H, W in multiples of the stride (default range: 2*stride .. 2x the size)")
    p.add_argument("--uint8-output", action="store_true", help="in-graph conversion to uint8 (N, H, W, 3) RGB")
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
    check.add_argument("--atol", type=float)
    check.add_argument("--rtol", type=float)
    check.add_argument("--min-psnr", type=float)
    p.add_argument("--triton-repo", help="also write a Triton model repository (onnx / trt) into this folder")
    p.add_argument("--triton-instances", type=int, default=1, help="model instances per GPU in the Triton configs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError) as e:
        print(f"gaugan-export: error: {e}", file=sys.stderr)
        return 2
    return 0


@dataclasses.dataclass
class Artifact:
    """One built artifact in the staging folder, and what runs it for verification."""

    path: Path
    meta: ArtifactMetadata
    runnable: Path  # the file verification runs: the artifact, or the ONNX a TensorRT plan was built from


def run(args: argparse.Namespace) -> list[Path]:
    from .tensorrt import INSTALL_HINT, tensorrt_available

    if args.format == "trt" and not tensorrt_available():
        raise ImportError(INSTALL_HINT)  # at once, before any work
    output = Path(args.output or f"engines/{Path(args.checkpoint).stem}{SUFFIX[args.format]}")
    if output.suffix != SUFFIX[args.format]:
        raise ValueError(f"--output {output} must end in {SUFFIX[args.format]} for --format {args.format}")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"--output {output}: the folder {output.parent} does not exist")
    if args.format == "pt2":
        from .to_pt2 import check_precision_device

        if args.engine == "int8":
            raise ValueError("--engine int8 is for --format onnx / trt (Q/DQ ONNX); .pt2 packages are fp32 or fp16")
        check_precision_device(args.engine, None)
    if args.triton_repo and args.format == "pt2":
        raise ValueError("--triton-repo serves ONNX and TensorRT artifacts: use --format onnx or --format trt")
    if args.triton_repo and not Path(args.triton_repo).parent.is_dir():
        raise FileNotFoundError(f"--triton-repo {args.triton_repo}: the folder {Path(args.triton_repo).parent} "
                                f"does not exist")
    verify = args.verify if args.verify is not None else args.format != "trt"
    steps = Steps()

    with steps("load checkpoint"):
        from gaugan_sdk.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.checkpoint, args.preset, **parse_overrides(args.overrides))
        generator = ckpt.build_generator()
        encoder = ckpt.build_encoder() if ckpt.config.use_vae else None
        shapes = shape_range(args, ckpt.config)
    source = {"kind": ckpt.source.get("kind"), "sha256": ckpt.source.get("sha256")}
    with steps("calibration / verification masks"):
        from .calibration import calibration_masks, class_coverage, default_mask_count, warn_if_thin

        size = (shapes.height[1], shapes.width[1])
        count = args.calib_count or default_mask_count(args.engine)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            labels, instances, described = calibration_masks(ckpt.config, size, count, args.calib_dir)
            if args.engine == "int8":
                warn_if_thin(len(labels))
        for w in caught:
            print(f"  warning: {w.message}")
        print(f"  {described}, {size[0]}x{size[1]}; {class_coverage(labels, ckpt.config)}")

    with staging(output.parent) as stage:
        encoder_name = f"{output.stem}_encoder{output.suffix}" if encoder is not None else None
        context = dict(stage=stage, output=output, source=source, steps=steps, encoder_name=encoder_name)
        if args.format == "pt2":
            artifacts = build_pt2(args, generator, encoder, shapes, **context)
        else:
            artifacts = build_onnx(args, generator, encoder, shapes, (labels, instances), **context)
        files = []
        for artifact in artifacts:
            write_sidecar(artifact.path, artifact.meta)
            files += sorted({artifact.path, artifact.runnable, sidecar_path(artifact.path)})
        if verify:
            with steps("verify against eager PyTorch fp32"):
                files.append(verify_artifacts(args, artifacts, generator, encoder, (labels, instances), stage, output))
        models = []
        if args.triton_repo:
            with steps("Triton model repository"):
                from .triton import write_repository

                models = write_repository(stage / "triton", output.stem, [(a.path, a.meta) for a in artifacts],
                                          instances=args.triton_instances)
        written = [output.parent / f.name for f in files]
        for f in files:
            f.replace(output.parent / f.name)
        if models:
            repo = Path(args.triton_repo)
            repo.mkdir(exist_ok=True)
            for folder in models:
                if (repo / folder.name).exists():
                    shutil.rmtree(repo / folder.name)
                folder.replace(repo / folder.name)
                written.append(repo / folder.name)

    print(f"\nwrote {', '.join(str(p) for p in written)}   ({steps.total():.1f} s)")
    print(next_steps(output, artifacts[0].meta))
    if models:
        print(f"serve it: tritonserver --model-repository={args.triton_repo}   (models: "
              f"{', '.join(m.name for m in models)})")
    return written


def build_onnx(args, generator, encoder, shapes, masks, *, stage, output, source, steps, encoder_name):
    from .to_onnx import export_generator
    from .verify import generator_feeds

    with steps("export generator to ONNX (fp32)"):
        onnx32 = stage / f"{output.stem}.fp32.onnx"
        meta = export_generator(generator, onnx32, shapes, uint8_output=args.uint8_output, source=source,
                                encoder_file=encoder_name)
    onnx_final = stage / f"{output.stem}.onnx"
    with steps(f"precision {args.engine}"):
        cache = output.parent / f"{output.name}.calib.json" if args.engine == "int8" else None
        meta, _ = apply_precision(onnx32, onnx_final, meta, args.engine, generator_feeds(meta, *masks), cache,
                               target_psnr_db=args.min_psnr, int8_max_fp16=args.int8_max_fp16)
    onnx_files = [(onnx_final, meta)]
    if encoder is not None:
        with steps("export style encoder"):
            encoder_onnx = stage / f"{output.stem}_encoder.onnx"
            onnx_files.append((encoder_onnx, export_style_encoder(encoder, encoder_onnx, args.engine, source)))
    if args.format == "onnx":
        return [Artifact(path, meta, path) for path, meta in onnx_files]
    from .tensorrt import build_plan

    artifacts = []
    for onnx_file, onnx_meta in onnx_files:
        plan = stage / (output.name if onnx_meta.role == "generator" else encoder_name)
        with steps(f"build TensorRT plan {plan.name}"):
            plan_meta = build_plan(onnx_file, plan, onnx_meta, workspace_gb=args.workspace,
                                   timing_cache=args.timing_cache)
        artifacts.append(Artifact(plan, plan_meta, onnx_file))
    return artifacts


def build_pt2(args, generator, encoder, shapes, *, stage, output, source, steps, encoder_name):
    from .to_pt2 import default_device, export_encoder_pt2, export_generator_pt2

    device = default_device()
    with steps(f"AOTInductor package ({args.engine}, {device})"):
        meta = export_generator_pt2(generator, stage / output.name, shapes, precision=args.engine, device=device,
                                    uint8_output=args.uint8_output, source=source, encoder_file=encoder_name)
    artifacts = [Artifact(stage / output.name, meta, stage / output.name)]
    if encoder is not None:
        with steps("AOTInductor package of the style encoder"):
            encoder_meta = export_encoder_pt2(encoder, stage / encoder_name, precision=args.engine, device=device,
                                              source=source)
        artifacts.append(Artifact(stage / encoder_name, encoder_meta, stage / encoder_name))
    return artifacts


def verify_artifacts(args, artifacts, generator, encoder, masks, stage: Path, output: Path) -> Path:
    from .to_pt2 import pt2_runner
    from .verify import generator_feeds, onnx_runner, verify_encoder, verify_generator

    gates = {"atol": args.atol, "rtol": args.rtol, "min_psnr": args.min_psnr}
    reports = []
    for artifact in artifacts:
        meta = artifact.meta
        if meta.format == "pt2":
            runner = pt2_runner(artifact.runnable, meta)
        else:
            runner = onnx_runner(artifact.runnable)
            if meta.format == "tensorrt":
                print(f"  {artifact.path.name}: checking the ONNX it was built from ({artifact.runnable.name}); "
                      f"the plan itself runs on the GPU (gaugan_sdk runtime / trtexec)")
                meta = dataclasses.replace(meta, format="onnx")
        if meta.role == "generator":
            reports.append(verify_generator(runner, artifact.path.name, meta, generator,
                                            generator_feeds(meta, *masks), **gates))
        else:
            styles = np.random.default_rng(0).integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
            reports.append(verify_encoder(runner, artifact.path.name, meta, encoder, styles))
    for report in reports:
        suffix = " (on random style images)" if report.role == "encoder" else ""
        print(f"  {report.summary()}{suffix}")
    report_path = stage / f"{output.name}.verify.json"
    with atomic_write(report_path) as tmp:
        tmp.write_text(json.dumps([dataclasses.asdict(r) for r in reports], indent=2))
    failed = [r for r in reports if not r.passed]
    if failed:
        shutil.copy(report_path, output.parent / report_path.name)
        raise RuntimeError(f"verification failed: {'; '.join(f'{r.role}: {r.failure}' for r in failed)}; "
                           f"nothing was written except the report {output.parent / report_path.name}")
    return report_path


def apply_precision(onnx32: Path, final: Path, meta: ArtifactMetadata, engine: str, feeds,
                    calib_cache: Path | None = None, target_psnr_db: float | None = None,
                    int8_max_fp16: float | None = None) -> tuple[ArtifactMetadata, PrecisionReport | None]:
    """fp16 / int8 conversion of the fp32 ONNX at `onnx32` (left in place) into `final`, to its PSNR target
    (default: the verification gate of `engine`); fp32 moves `onnx32` to `final`."""
    import onnx

    from .int8 import MAX_FP16_FRACTION, convert_int8
    from .precision import convert_fp16
    from .to_onnx import save_onnx
    from .verify import DEFAULT_GATES, PsnrProbe

    if engine == "fp32":
        onnx32.replace(final)
        return meta, None
    target = target_psnr_db if target_psnr_db is not None else DEFAULT_GATES[engine]["min_psnr"]
    measure = PsnrProbe(onnx32, feeds, final.parent, 255.0 if meta.uint8_output else 2.0)
    if engine == "fp16":
        converted, report = convert_fp16(onnx.load(onnx32), measure, target)
    else:
        fraction = MAX_FP16_FRACTION if int8_max_fp16 is None else int8_max_fp16
        converted, report = convert_int8(onnx32, feeds, measure, target, cache_path=calib_cache,
                                         max_fp16_fraction=fraction)
    for note in report.notes:
        print(f"  {note}")
    meta = dataclasses.replace(meta, precision=engine)
    save_onnx(converted, final, meta)
    return meta, report


def export_style_encoder(encoder, path: Path, engine: str, source: dict) -> ArtifactMetadata:
    """The style encoder's ONNX: fp32, or fp16 (also for int8 models: there are no style images to calibrate
    the encoder on, and it is ~1 GMAC against the generator's ~200)."""
    from .to_onnx import export_encoder

    meta = export_encoder(encoder, path, source=source)
    if engine in ("fp16", "int8"):
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        from .precision import NORMALIZATION_OPS
        from .to_onnx import save_onnx

        model = convert_float_to_float16(onnx.load(path), keep_io_types=True, op_block_list=list(NORMALIZATION_OPS))
        meta = dataclasses.replace(meta, precision="fp16")
        save_onnx(model, path, meta)
    return meta


def shape_range(args: argparse.Namespace, cfg: GeneratorConfig):
    from .trace import ShapeRange

    if args.batch is not None and (args.min_shape or args.opt_shape or args.max_shape):
        raise ValueError("give --batch or --min-shape/--opt-shape/--max-shape, not both")
    if args.batch is not None:
        if args.batch < 1:
            raise ValueError(f"--batch {args.batch}: must be >= 1")
        return ShapeRange(batch=(1, args.batch, args.batch)).resolved(cfg)
    h, w = cfg.image_size
    if args.min_shape or args.opt_shape or args.max_shape:
        if not (args.min_shape and args.opt_shape and args.max_shape):
            raise ValueError("--min-shape, --opt-shape and --max-shape go together")
        low, opt, high = (_parse_shape(s) for s in (args.min_shape, args.opt_shape, args.max_shape))
        spatial = args.dynamic_size or len({low[1:], opt[1:], high[1:]}) > 1
        return ShapeRange(batch=(low[0], opt[0], high[0]),
                          height=(low[1], opt[1], high[1]) if spatial else None,
                          width=(low[2], opt[2], high[2]) if spatial else None).resolved(cfg)
    if args.dynamic_size:  # default range: 2 strides .. twice the trained size, optimized for the trained size
        low = 2 * cfg.stride
        return ShapeRange(height=(low, max(h, low), max(2 * h, low)),
                          width=(low, max(w, low), max(2 * w, low))).resolved(cfg)
    return ShapeRange().resolved(cfg)


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ValueError(f"shape {text!r}: expected BxHxW, e.g. 1x256x512")
    return values


def next_steps(output: Path, meta: ArtifactMetadata) -> str:
    lines = ["\nrun it:", "  from gaugan_sdk import Synthesizer",
             f"  image = Synthesizer(\"{output}\").run(label)   # label: (H, W) class ids -> (H, W, 3) uint8 RGB"]
    if meta.format == "tensorrt":
        from .tensorrt import trtexec_command

        lines += ["the same plan with trtexec:", "  " + trtexec_command(output.with_suffix(".onnx"), output, meta)]
    return "\n".join(lines)


class Steps:
    """Numbered, timed progress lines."""

    def __init__(self):
        self.count, self.times = 0, []

    @contextlib.contextmanager
    def __call__(self, what: str):
        self.count += 1
        print(f"[{self.count}] {what} ...", flush=True)
        start = time.perf_counter()
        yield
        self.times.append(time.perf_counter() - start)
        print(f"    done in {self.times[-1]:.1f} s", flush=True)

    def total(self) -> float:
        return sum(self.times)


@contextlib.contextmanager
def staging(folder: Path):
    """A temporary folder beside the outputs (same file system, so the final moves are renames)."""
    stage = Path(tempfile.mkdtemp(prefix=".gaugan-export-", dir=folder))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

