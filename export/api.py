"""The Python export API: a checkpoint -> verified artifacts, the way Ultralytics users call `model.export()`.

    from export import export_checkpoint
    result = export_checkpoint("runs/00003-city/checkpoints/iter_0050000.pt", format="onnx", precision="fp16",
                               output="engines/city.onnx", batch=(1, 4, 8))
    result.artifacts      # every path written: generator, encoder, sidecars, verify report, Triton folders
    result.verification   # one VerifyReport per artifact (PSNR, max error, uint8 levels, passed)

`gaugan-export` (export/cli.py) is a thin argparse layer over `export_checkpoint`. Every file is staged in a
temporary folder beside the output and moved into place only when every stage (export, precision, build,
verification) passed: a failed export leaves no partial file (export/staging.py). Bad options raise ValueError /
FileNotFoundError / PermissionError / ImportError at once, before any work (an output that is a folder, or that
would overwrite the checkpoint, included); a failed verification raises VerificationError and writes only
`<output>.verify.failed.json`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gaugan_sdk._io import atomic_write
from gaugan_sdk.inputs import check_count
from gaugan_sdk.config import GeneratorConfig, parse_overrides
from gaugan_sdk.contract import CPU_ONLY_GRAPHS, GRAPHS, IDS_GRAPHS, MASK_CONVS, REFERENCE, GraphVariant, Range, Shapes
from gaugan_sdk.kinds import EXPORT_FORMATS, ONNX, PT2, SUFFIXES, TENSORRT
from gaugan_sdk.metadata import PRECISIONS, ArtifactMetadata, sidecar_path, write_sidecar

from .progress import Steps
from .staging import check_output, failed_report_name, report_name, staging, sweep_stale

if TYPE_CHECKING:
    from .verify import VerifyReport

RangeLike = int | Sequence[int] | Range


@dataclasses.dataclass
class ExportResult:
    """What `export_checkpoint` wrote."""

    artifacts: list[Path]  # every path written, the generator artifact first
    metadata: list[ArtifactMetadata]  # generator, then the style encoder if the model has one
    verification: list[VerifyReport]  # empty with verify=False
    precision_notes: list[str]  # what the fp16 / int8 conversion measured and kept
    seconds: float

    @property
    def output(self) -> Path:
        """The generator artifact."""
        return self.artifacts[0]


class VerificationError(RuntimeError):
    """An artifact missed its verification gate; only the report was written (`report`)."""

    def __init__(self, message: str, reports: list[VerifyReport], report: Path):
        super().__init__(message)
        self.reports, self.report = reports, report


@dataclasses.dataclass
class _Built:
    """One artifact in the staging folder, and the file verification runs (a TensorRT plan: its ONNX)."""

    path: Path
    meta: ArtifactMetadata
    runnable: Path


def export_checkpoint(checkpoint: str | Path, *, format: str | None = None, precision: str = "fp32",
                      output: str | Path | None = None, preset: str | None = None,
                      overrides: dict[str, Any] | Sequence[str] | None = None,
                      batch: RangeLike | None = None, height: RangeLike | None = None, width: RangeLike | None = None,
                      dynamic_size: bool = False, uint8_output: bool = False, graph: str = "fast",
                      mask_conv: str = "auto", fused: bool | None = None,
                      calib_dir: str | Path | None = None, calib_count: int | None = None,
                      int8_max_fp16: float | None = None, timing_cache: str | Path | None = None,
                      workspace_gb: float = 4.0, verify: bool | None = None, atol: float | None = None,
                      rtol: float | None = None, min_psnr: float | None = None,
                      triton_repo: str | Path | None = None, triton_instances: int = 1,
                      triton_device: str = "auto", verbose: bool = True) -> ExportResult:
    """Export a checkpoint (ours, or an NVlabs folder / *_net_G.pth with `preset`) to verified artifacts.

    format: "onnx", "trt" or "engine" (a TensorRT plan, built from the ONNX; "engine" names it .engine) or "pt2"
    (AOTInductor); None: what the output's suffix says, else a TensorRT plan where TensorRT is installed, else
    ONNX, with a note saying so.
    precision: "fp32", "fp16" or "int8" (Q/DQ ONNX, calibrated on `calib_dir` label PNGs or procedural scenes).
    output: the artifact path (default engines/<checkpoint name><suffix>, the folder created); the style encoder
    goes beside it.
    overrides: preset fields for NVlabs checkpoints, as a dict or "KEY=VALUE" strings.
    batch: N (dynamic 1..N, optimized for N) or (min, opt, max); height / width: pixels, an int or a range
    (multiples of the stride); dynamic_size=True with neither: 2 strides .. twice the trained size.
    verify: check every artifact against eager PyTorch fp32 (default: on for onnx and pt2) with the gates
    `atol`/`rtol` (fp32) and `min_psnr` (fp16 40 dB, int8 35 dB; also the conversion's target).
    graph: "fast" (exact restructuring: batch norm folded into the modulation, one mask conv per block, one
    mask for N styles), "sparse" (the fast graph with the modulation computed densely only near class
    boundaries: fp32 ONNX for ONNX Runtime on the CPU) or "reference" (one op per reference op); mask_conv: the
    fast (or sparse graph's dense) first mask conv,
    "conv", "lookup" or "auto"; fused: its convs fused or not (None: by target). `fast_variant` gives the
    target's choice. Every graph is verified against the eager reference graph.
    triton_repo: also write a Triton model repository there, `triton_instances` instances per device, on
    `triton_device` "auto" (plans: the GPU; ONNX: Triton's GPUs, else its CPU), "gpu" or "cpu".
    verbose: print numbered progress lines (else say nothing; warnings arrive as Python warnings)."""
    kind, chosen = _export_kind(format, output)
    if graph in CPU_ONLY_GRAPHS:  # fp32 ONNX on the CPU, whatever else is installed
        if format is None:  # no format asked: the one this graph has
            kind, chosen = ONNX, None
        if triton_device == "gpu":
            raise ValueError(f"triton_device='gpu' with graph={graph!r}: the sparse graph runs on the CPU; "
                             f"accepted: 'cpu' or 'auto' (which places it on the CPU)")
        triton_device = "cpu"
        if kind is not ONNX or precision != "fp32":
            raise ValueError(f"graph={graph!r} is exported as fp32 ONNX for ONNX Runtime on the CPU (format 'onnx', "
                             f"precision 'fp32'; got format {kind.name!r}, precision {precision!r}): its band has a "
                             f"size known only at run time, which TensorRT plans, .pt2 packages and the fp16 / int8 "
                             f"conversions do not take; GPUs run the dense fast graph (graph='fast')")
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; accepted: {', '.join(PRECISIONS)}")
    if graph not in GRAPHS:
        raise ValueError(f"graph={graph!r}; accepted: {', '.join(GRAPHS)}")
    if mask_conv not in ("auto", *MASK_CONVS):
        raise ValueError(f"mask_conv={mask_conv!r}; accepted: auto, {', '.join(MASK_CONVS)}")
    if fused not in (None, True, False):
        raise ValueError(f"fused={fused!r}; accepted: True, False or None (by target)")
    if kind is TENSORRT:
        from .tensorrt import INSTALL_HINT, tensorrt_available

        if not tensorrt_available():
            raise ImportError(INSTALL_HINT)  # at once, before any work
    default_output = output is None
    suffix = ".engine" if format == "engine" else kind.suffix
    output = Path(output) if output is not None else Path("engines") / f"{Path(checkpoint).stem}{suffix}"
    if output.suffix not in kind.suffixes:
        raise ValueError(f"output {output} must end in {' or '.join(kind.suffixes)} for format {format or kind.name!r}")
    if kind is PT2:
        from .to_pt2 import check_precision_device

        if precision == "int8":
            raise ValueError("int8 is for --format onnx / trt (Q/DQ ONNX); .pt2 packages are fp32 or fp16")
        check_precision_device(precision, None)
    check_count(triton_instances, "triton_instances", 1)  # model instances per device
    for name, value, positive in (("atol", atol, False), ("rtol", rtol, False), ("min_psnr", min_psnr, True),
                                  ("workspace_gb", workspace_gb, True)):
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value < 0 or (positive and value == 0):
            raise ValueError(f"{name}={value!r}; accepted: a finite number {'> 0' if positive else '>= 0'}")
    if triton_repo and Path(triton_repo).exists() and not Path(triton_repo).is_dir():
        raise ValueError(f"triton_repo {triton_repo} is a file; give a folder (created if missing)")
    if triton_repo and kind is PT2:
        raise ValueError("a Triton repository serves ONNX and TensorRT artifacts: use format 'onnx' or 'trt'")
    if triton_repo and not Path(triton_repo).parent.is_dir():
        raise FileNotFoundError(f"triton_repo {triton_repo}: the folder {Path(triton_repo).parent} does not exist")
    if triton_repo:
        from .triton import instance_kind

        instance_kind(kind.name, triton_device)  # a bad device, or a plan on the CPU, refused before any work
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(list(overrides))
    verify = verify if verify is not None else kind is not TENSORRT
    if kind is not PT2 and (verify or precision == "int8") and importlib.util.find_spec("onnxruntime") is None:
        raise ImportError(f"{'int8 calibration' if precision == 'int8' else 'verification'} runs the ONNX model with "
                          f"ONNX Runtime, which is not installed: pip install \"gaugan-sdk[onnxruntime]\" (CPU) or "
                          f"\"gaugan-sdk[gpu]\" (CUDA; never both)" + ("" if precision == "int8" else
                                                                     ", or export with verify=False (--no-verify)"))
    if default_output:  # the last check before any write
        output.parent.mkdir(parents=True, exist_ok=True)
    check_output(output, checkpoint, tensorrt=kind is TENSORRT)
    steps = Steps(verbose)
    if chosen and verbose:
        steps.say(f"note: {chosen}")
    elif chosen:
        warnings.warn(chosen, stacklevel=2)

    with steps("load checkpoint"):
        from gaugan_sdk.checkpoint import load_checkpoint

        ckpt = load_checkpoint(checkpoint, preset, **(overrides or {}))
        generator = ckpt.build_generator()
        encoder = ckpt.build_encoder() if ckpt.config.use_vae else None
        shapes = export_shapes(ckpt.config, batch, height, width, dynamic_size)
        variant = REFERENCE
        if graph in IDS_GRAPHS:
            default = fast_variant(ckpt.config, kind)
            variant = GraphVariant(graph, default.mask_conv if mask_conv == "auto" else mask_conv,
                                   default.fused if fused is None else fused)
            steps.say(f"  graph {variant.label} ({'boundary-sparse modulation, dense where the band is crowded: ' if graph == 'sparse' else ''}"
                      f"mask conv as a {variant.mask_conv}, convs {'fused' if variant.fused else 'one each'})")
    source = {"kind": ckpt.source.get("kind"), "sha256": ckpt.source.get("sha256")}
    with steps("calibration / verification masks"):
        from .calibration import calibration_masks, class_coverage, default_mask_count, warn_if_thin

        size = (shapes.height.opt, shapes.width.opt)
        count = default_mask_count(precision) if calib_count is None else calib_count
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            labels, instances, described = calibration_masks(ckpt.config, size, count, calib_dir)
            if precision == "int8":
                warn_if_thin(len(labels))
        for w in caught:  # said in the progress lines, or passed on as warnings when quiet
            if verbose:
                steps.say(f"  warning: {w.message}")
            else:
                warnings.warn(w.message, stacklevel=3)
        steps.say(f"  {described}, {size[0]}x{size[1]}; {class_coverage(labels, ckpt.config)}")
    masks = (labels, instances)

    for stale in sweep_stale(output.parent):
        steps.say(f"  removed {stale.name}, the staging folder of an export that was killed")
    with staging(output.parent) as stage:
        encoder_name = f"{output.stem}_encoder{output.suffix}" if encoder is not None else None
        context = dict(stage=stage, output=output, source=source, steps=steps, encoder_name=encoder_name)
        notes: list[str] = []
        if kind is PT2:
            built = _build_pt2(generator, encoder, shapes, precision, uint8_output, variant, **context)
        else:
            built = _build_onnx(generator, encoder, shapes, precision, uint8_output, variant, masks, notes, kind,
                                calib_cache=output.parent / f"{output.name}.calib.json",
                                gates=dict(min_psnr=min_psnr, int8_max_fp16=int8_max_fp16),
                                trt=dict(workspace_gb=workspace_gb, timing_cache=timing_cache), **context)
        files = []
        for artifact in built:
            write_sidecar(artifact.path, artifact.meta)
            files += sorted({artifact.path, artifact.runnable, sidecar_path(artifact.path)})
        reports: list[VerifyReport] = []
        if verify:
            with steps("verify against eager PyTorch fp32"):
                report_path, reports = _verify(built, generator, encoder, masks, stage, output, steps,
                                               dict(atol=atol, rtol=rtol, min_psnr=min_psnr))
            files.append(report_path)
        models = []
        if triton_repo:
            with steps("Triton model repository"):
                from .triton import write_repository

                models = write_repository(stage / "triton", output.stem, [(a.path, a.meta) for a in built],
                                          instances=triton_instances, device=triton_device)
        written = [output.parent / f.name for f in files]
        for f in files:
            f.replace(output.parent / f.name)
        (output.parent / failed_report_name(output)).unlink(missing_ok=True)  # an earlier attempt's, superseded
        if models:
            repo = Path(triton_repo)
            repo.mkdir(exist_ok=True)
            for folder in models:
                if (repo / folder.name).exists():
                    shutil.rmtree(repo / folder.name)
                folder.replace(repo / folder.name)
                written.append(repo / folder.name)
    written.sort(key=lambda p: p != output)  # the generator artifact first
    return ExportResult(written, [a.meta for a in built], reports, notes, steps.total())


def export_shapes(cfg: GeneratorConfig, batch: RangeLike | None = None, height: RangeLike | None = None,
                  width: RangeLike | None = None, dynamic_size: bool = False) -> Shapes:
    """The export's resolved Shapes: `batch` N means 1..N optimized for N (trtexec's habit); `dynamic_size`
    without height / width: 2 strides .. twice the trained size, optimized for the trained size."""
    if isinstance(batch, int) and not isinstance(batch, bool):
        if batch < 1:
            raise ValueError(f"batch {batch}: must be >= 1")
        batch = Range(1, batch, batch)
    if dynamic_size and height is None and width is None:
        h, w = cfg.image_size
        low = 2 * cfg.stride
        height, width = Range(low, max(h, low), max(2 * h, low)), Range(low, max(w, low), max(2 * w, low))
    return Shapes(Range.of(batch, "batch range") if batch is not None else Shapes().batch,
                  None if height is None else Range.of(height, "height range"),
                  None if width is None else Range.of(width, "width range")).resolved(cfg)


# The fast graph by target. Measured on the 2-core CPU machine with ONNX Runtime (python -m export.benchmark,
# README "Fast graph"): the lookup pays from LOOKUP_MIN_CHANNELS_CPU mask channels (conv wins at 36, lookup at
# 151 and 184), and fused convs cost a split (a copy, layout reorders) there. On GPUs (TensorRT, CUDA .pt2)
# dense convs run on tensor cores, gathers do not, and slices are free: conv, fused; not measured here.
LOOKUP_MIN_CHANNELS_CPU = 64


def fast_variant(cfg: GeneratorConfig, kind, device: str | None = None) -> GraphVariant:
    """The fast graph variant for `cfg` exported as `kind` (a .pt2 for `device`, default this machine's)."""
    gpu = kind is TENSORRT
    if kind is PT2:
        from .to_pt2 import default_device

        gpu = (device or default_device()) == "cuda"
    if gpu:
        return GraphVariant("fast", "conv", fused=True)
    return GraphVariant("fast", "lookup" if cfg.semantic_nc >= LOOKUP_MIN_CHANNELS_CPU else "conv", fused=False)


def _export_kind(fmt: str | None, output: str | Path | None):
    """The kind `format` names, and a note when it was chosen here. No format given: the output's suffix says it
    (.onnx, .plan / .engine, .pt2), else a TensorRT plan where TensorRT is installed, else ONNX."""
    if fmt is None:
        from .tensorrt import tensorrt_available

        by_suffix = SUFFIXES.get(Path(output).suffix) if output is not None else None
        if by_suffix is not None and by_suffix.export_format:
            return by_suffix, None

        if tensorrt_available():
            return TENSORRT, None
        return ONNX, ("no --format given and TensorRT is not installed here: exporting ONNX (--format onnx), which "
                      "ONNX Runtime runs anywhere and TensorRT builds later; for a plan, install gaugan-sdk[trt] on "
                      "a machine with an NVIDIA GPU and pass --format trt")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format={fmt!r}; accepted: {', '.join(sorted(EXPORT_FORMATS))}")
    return EXPORT_FORMATS[fmt], None


def _build_onnx(generator, encoder, shapes, precision, uint8_output, variant, masks, notes, kind, *, calib_cache,
                gates, trt, stage, output, source, steps, encoder_name) -> list[_Built]:
    from .precision import apply_precision, export_style_encoder
    from .to_onnx import export_generator
    from .verify import generator_feeds

    with steps(f"export the {variant.label} generator graph to ONNX (fp32)"):
        onnx32 = stage / f"{output.stem}.fp32.onnx"
        meta = export_generator(generator, onnx32, shapes, uint8_output=uint8_output, source=source,
                                encoder_file=encoder_name, variant=variant)
    onnx_final = stage / f"{output.stem}.onnx"
    with steps(f"precision {precision}"):
        meta, report = apply_precision(onnx32, onnx_final, meta, precision, generator_feeds(meta, *masks),
                                       calib_cache if precision == "int8" else None,
                                       target_psnr_db=gates["min_psnr"], int8_max_fp16=gates["int8_max_fp16"],
                                       show_progress=None if steps.verbose else False)
        for note in report.notes if report else []:
            steps.say(f"  {note}")
            notes.append(note)
    onnx_files = [(onnx_final, meta)]
    if encoder is not None:
        with steps("export style encoder"):
            encoder_onnx = stage / f"{output.stem}_encoder.onnx"
            onnx_files.append((encoder_onnx, export_style_encoder(encoder, encoder_onnx, precision, source)))
    if kind is not TENSORRT:
        return [_Built(path, meta, path) for path, meta in onnx_files]
    from .tensorrt import build_plan

    built = []
    for onnx_file, onnx_meta in onnx_files:
        plan = stage / (output.name if onnx_meta.role == "generator" else encoder_name)
        with steps(f"build TensorRT plan {plan.name}"):
            plan_meta = build_plan(onnx_file, plan, onnx_meta, show_progress=None if steps.verbose else False,
                                   **trt)
        built.append(_Built(plan, plan_meta, onnx_file))
    return built


def _build_pt2(generator, encoder, shapes, precision, uint8_output, variant, *, stage, output, source, steps,
               encoder_name) -> list[_Built]:
    from .to_pt2 import default_device, export_encoder_pt2, export_generator_pt2

    device = default_device()
    with steps(f"AOTInductor package of the {variant.label} graph ({precision}, {device})"):
        meta = export_generator_pt2(generator, stage / output.name, shapes, precision=precision, device=device,
                                    uint8_output=uint8_output, source=source, encoder_file=encoder_name,
                                    variant=variant)
    built = [_Built(stage / output.name, meta, stage / output.name)]
    if encoder is not None:
        with steps("AOTInductor package of the style encoder"):
            encoder_meta = export_encoder_pt2(encoder, stage / encoder_name, precision=precision, device=device,
                                              source=source)
        built.append(_Built(stage / encoder_name, encoder_meta, stage / encoder_name))
    return built


def _verify(built, generator, encoder, masks, stage: Path, output: Path, steps: Steps,
            gates: dict) -> tuple[Path, list[VerifyReport]]:
    from .to_pt2 import pt2_runner
    from .verify import generator_feeds, onnx_runner, verify_encoder, verify_generator

    reports = []
    for artifact in built:
        meta = artifact.meta
        if meta.format == PT2.name:
            runner = pt2_runner(artifact.runnable, meta)
        else:
            runner = onnx_runner(artifact.runnable)
            if meta.format == TENSORRT.name:
                steps.say(f"  {artifact.path.name}: checking the ONNX it was built from ({artifact.runnable.name}); "
                          f"the plan itself runs on the GPU (gaugan_sdk runtime / trtexec)")
                meta = dataclasses.replace(meta, format="onnx")
        if meta.role == "generator":
            reports.append(verify_generator(runner, artifact.path.name, meta, generator,
                                            generator_feeds(meta, *masks), **gates))
        else:
            styles = np.random.default_rng(0).integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
            reports.append(verify_encoder(runner, artifact.path.name, meta, encoder, styles))
    for report in reports:
        steps.say(f"  {report.summary()}{' (on random style images)' if report.role == 'encoder' else ''}")
    report_path = stage / report_name(output)
    with atomic_write(report_path) as tmp:
        tmp.write_text(json.dumps([dataclasses.asdict(r) for r in reports], indent=2))
    failed = [r for r in reports if not r.passed]
    if failed:
        kept = output.parent / failed_report_name(output)
        shutil.copy(report_path, kept)
        raise VerificationError(f"verification failed: {'; '.join(f'{r.role}: {r.failure}' for r in failed)}; "
                                f"nothing was written except the report {kept} (files of an earlier export "
                                f"to {output.name} are left as they were)", reports, kept)
    return report_path, reports
