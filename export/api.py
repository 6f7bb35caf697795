"""The Python export API: a checkpoint -> verified artifacts, the way Ultralytics users call `model.export()`.

    from export import ExportOptions, export_checkpoint
    result = export_checkpoint("runs/00003-city/checkpoints/iter_0050000.pt", format="onnx", precision="fp16",
                               output="engines/city.onnx", batch=(1, 4, 8))
    result = export_checkpoint("ckpt.pt", ExportOptions(format="pt2", batch=8))   # the same, as one record
    result.artifacts      # every path written: generator, encoder, sidecars, verify report, Triton folders
    result.verification   # one VerifyReport per artifact (PSNR, max error, uint8 levels, passed)

The pipeline, each step one function: `plan_export` (the format, the output, what this machine can build:
every check before any work), load (the checkpoint, the resolved shapes, the graph variant for the target),
masks (calibration / verification), then in a staging folder beside the output: the kind's writer
(`gaugan_sdk.kinds.ArtifactKind.writer`: export/to_onnx.py, tensorrt.py, to_pt2.py), sidecars, verification
against eager PyTorch, the Triton repository; files move into place only when every step passed
(export/staging.py). Bad options raise ValueError / TypeError / FileNotFoundError / PermissionError /
ImportError at once; a failed verification raises VerificationError and writes only
`<output>.verify.failed.json`. `gaugan-export` (export/cli.py) is the command line over the same options.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gaugan_sdk._io import atomic_write
from gaugan_sdk.backends import RuntimeOptions, open_backend
from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.contract import MAX_PIXELS, GraphVariant, Range, Shapes
from gaugan_sdk.cpu import cpu_plan, openvino_bf16_here
from gaugan_sdk.kinds import EXPORT_FORMATS, KINDS, ONNX, SUFFIXES, TENSORRT, ArtifactKind, export_kind, kind_named
from gaugan_sdk.metadata import ArtifactMetadata, sidecar_path, write_sidecar
from gaugan_sdk.precisions import EXECUTION_PRECISION

from .job import Built, ExportJob, writer_of
from .options import ExportOptions
from .progress import Steps
from .staging import check_output, failed_report_name, report_name, staging, sweep_stale

if TYPE_CHECKING:
    from .verify import VerifyReport


@dataclasses.dataclass
class ExportResult:
    """What `export_checkpoint` wrote."""

    artifacts: list[Path]  # every path written, the generator artifact first
    metadata: list[ArtifactMetadata]  # generator, then the style encoder if the model has one
    verification: list[VerifyReport]  # empty with verify=False
    precision_notes: list[str]  # what the fp16 / int8 conversion measured and kept
    seconds: float
    options: ExportOptions | None = None  # as given (each artifact's metadata records them too)

    @property
    def output(self) -> Path:
        """The generator artifact."""
        return self.artifacts[0]


class VerificationError(RuntimeError):
    """An artifact missed its verification gate; only the report was written (`report`)."""

    def __init__(self, message: str, reports: list[VerifyReport], report: Path):
        super().__init__(message)
        self.reports, self.report = reports, report


@dataclasses.dataclass(frozen=True)
class ExportPlan:
    """What an export will do, settled before any work."""

    kind: ArtifactKind
    output: Path
    verify: bool
    graph: str  # the graph kind exported (options.graph, "auto" resolved for the target)
    note: str | None = None  # why this format, when the options did not name one


def export_checkpoint(checkpoint: str | Path, options: ExportOptions | dict[str, Any] | None = None, /,
                      **keywords: Any) -> ExportResult:
    """Export a checkpoint (ours, or an NVlabs folder / *_net_G.pth with `preset`) to verified artifacts.

    `options`: an ExportOptions (or a dict of its fields); `keywords` (the same field names) replace what it
    says. The fields (export/options.py, and `gaugan-export --help`): format ("onnx", "trt" / "engine", "pt2";
    None: the output's suffix, else a TensorRT plan where TensorRT is installed, else ONNX, with a note),
    precision ("fp32", "fp16", "int8"), output (default engines/<checkpoint name><suffix>), batch N (dynamic
    1..N, optimized for N) or (min, opt, max), height / width ranges or dynamic_size, graph ("fast", "sparse",
    "reference") with mask_conv / fused / dense_above (None / "auto": the target's choice,
    `GraphVariant.for_target`), the calibration masks, the TensorRT build, the verification gates (default: the
    precision's, gaugan_sdk.precisions), a Triton repository, verbose."""
    options = ExportOptions.of(options, **keywords)
    plan = plan_export(checkpoint, options)
    steps = Steps(options.verbose)
    if plan.note and options.verbose:
        steps.say(f"note: {plan.note}")
    elif plan.note:
        warnings.warn(plan.note, stacklevel=2)
    with steps("load checkpoint"):
        model = _load(checkpoint, options, plan, steps)
    with steps("calibration / verification masks"):
        masks = _masks(model["config"], model["shapes"], options, steps)
    for stale in sweep_stale(plan.output.parent):
        steps.say(f"  removed {stale.name}, the staging folder of an export that was killed")
    with staging(plan.output.parent) as stage:
        job = ExportJob(options, plan.kind, plan.output, masks=masks, stage=stage, steps=steps, **model)
        built = writer_of(plan.kind).write(job)
        reports: list[VerifyReport] = []
        files = []
        if plan.verify:
            with steps("verify against eager PyTorch fp32"):
                report_path, reports = _verify(job, built)
            files.append(report_path)
        for artifact in built:
            write_sidecar(artifact.path, artifact.meta)  # with the executions verified
            files[:0] = [*plan.kind.files(artifact.path), *artifact.extras, sidecar_path(artifact.path)]
        models = []
        if options.triton_repo:
            with steps("Triton model repository"):
                from .triton import write_repository

                models = write_repository(stage / "triton", plan.output.stem, [(a.path, a.meta) for a in built],
                                          instances=options.triton_instances, device=options.triton_device)
        written = _publish(files, models, plan, options)
    return ExportResult(written, [a.meta for a in built], reports, job.notes, steps.total(), options)


# ---------------------------------------------------------------------------------------------- planning
def plan_export(checkpoint: str | Path, options: ExportOptions) -> ExportPlan:
    """Every check that needs no model: the format and what it takes (the kind rows), the writer's own
    preflight (TensorRT installed, fp16 .pt2 on CUDA), the output and Triton folders, the libraries that
    conversion and verification run on. Raises before anything is written."""
    if not isinstance(checkpoint, (str, Path)) or not str(checkpoint):
        raise TypeError(f"checkpoint={checkpoint!r}; accepted: a path (str or pathlib.Path) to a checkpoint file or "
                        f"an NVlabs checkpoint folder")
    kind, note = _choose_kind(options)
    graph = _graph(options.graph, kind)
    refusal = kind.refusal(options.precision, graph)
    if refusal:
        raise ValueError(refusal)
    preflight = getattr(writer_of(kind), "preflight", None)
    if preflight is not None:
        preflight(options)
    default_output = options.output is None
    suffix = ".engine" if options.format == "engine" else kind.suffix
    output = options.output or Path("engines") / f"{Path(checkpoint).stem}{suffix}"
    if output.suffix not in kind.suffixes:
        raise ValueError(f"output {output} must end in {' or '.join(kind.suffixes)} for format "
                         f"{options.format or kind.name!r}")
    if options.triton_repo:
        _check_triton(kind, graph, output, options)
    verify = kind.verify if options.verify is None else options.verify
    _check_libraries(kind, options, verify)
    _check_sizes(options)
    if default_output:  # the last check before any write
        output.parent.mkdir(parents=True, exist_ok=True)
    check_output(output, checkpoint, kind)
    return ExportPlan(kind, output, verify, graph, note)


def _graph(graph: str, kind: ArtifactKind) -> str:
    """The graph kind to export: as asked, or for "auto" the target's: the CPU plan's for a CPU format
    (gaugan_sdk.cpu: sparse on CPUs where it is the fastest), the fast graph elsewhere."""
    if graph != "auto":
        return graph
    planned = cpu_plan().graph
    return planned if kind.devices == ("cpu",) or kind is ONNX and planned in kind.graphs else "fast"


def _choose_kind(options: ExportOptions) -> tuple[ArtifactKind, str | None]:
    """The kind `format` names; none named: the output's suffix says it, else a TensorRT plan where TensorRT is
    installed and takes the graph, else ONNX (with a note where a plan was the alternative)."""
    if options.format is not None:
        return export_kind(options.format), None
    by_suffix = SUFFIXES.get(options.output.suffix) if options.output is not None else None
    if by_suffix is not None and by_suffix.export_format:
        return by_suffix, None
    if options.graph not in (*TENSORRT.graphs, "auto"):  # a graph TensorRT does not take (sparse): ONNX
        return ONNX, None
    from .tensorrt import tensorrt_available

    if tensorrt_available():
        return TENSORRT, None
    return ONNX, ("no --format given and TensorRT is not installed here: exporting ONNX (--format onnx), which "
                  "ONNX Runtime runs anywhere and TensorRT builds later; for a plan, install gaugan-sdk[trt] on a "
                  "machine with an NVIDIA GPU and pass --format trt")


def _check_triton(kind: ArtifactKind, graph: str, output: Path, options: ExportOptions) -> None:
    from .triton import check_repository, instance_kind, served

    if kind.triton is None:
        raise ValueError(f"a Triton repository serves {served()} artifacts; {kind.name} is not one of them: use "
                         f"format {' or '.join(repr(k.export_format) for k in KINDS if k.triton)}")
    instance_kind(kind, graph, options.triton_device)  # a device neither format nor graph runs on
    check_repository(Path(options.triton_repo), output.stem)


def _check_libraries(kind: ArtifactKind, options: ExportOptions, verify: bool) -> None:
    """The libraries the conversion (ONNX Runtime measures fp16 / int8 candidates) and the verification (the
    backend of the kind it runs) need, installed."""
    needs = []
    if kind.via_onnx and options.precision != "fp32":
        needs.append((ONNX, f"the {options.precision} conversion (it measures each candidate)"))
    if verify:
        needs.append((kind_named(kind.verifies_as or kind.name), "verification"))
    for runner, purpose in needs:
        if importlib.util.find_spec(runner.package) is None:
            hint = "" if purpose != "verification" else ", or export with verify=False (--no-verify)"
            raise ImportError(f"{purpose} runs the {runner.name} model with {runner.package}, which is not "
                              f"installed here: {runner.install}{hint}")


def _check_sizes(options: ExportOptions) -> None:
    """The largest call the ranges given allow, bounded before the checkpoint is read (sizes not given are the
    model's, checked with it)."""
    given = [r.max for r in (options.batch, options.height, options.width) if r is not None]
    if len(given) >= 2 and int(np.prod(given, dtype=np.int64)) > MAX_PIXELS:
        raise ValueError(f"batch, height and width maxima {' x '.join(map(str, given))} exceed {MAX_PIXELS:,} pixels "
                         f"in one call (8192 x 8192); lower the max batch or size")


# ---------------------------------------------------------------------------------------------- model, masks
def _load(checkpoint: str | Path, options: ExportOptions, plan: ExportPlan, steps: Steps) -> dict[str, Any]:
    """The checkpoint's generator (and encoder), the resolved shapes and the graph variant for the target."""
    from gaugan_sdk.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint, options.preset, **options.overrides)
    cfg = ckpt.config
    device = plan.kind.device_for(_build_device() if plan.kind.built_for_device else "cpu")
    variant = GraphVariant.for_target(plan.graph, cfg, device, mask_conv=options.mask_conv, fused=options.fused,
                                      dense_above=options.dense_above if plan.graph == "sparse" else None)
    shapes = export_shapes(cfg, options.batch, options.height, options.width, options.dynamic_size)
    if variant.graph != "reference":
        sparse = "boundary-sparse modulation, dense where the band is crowded: " if variant.graph == "sparse" else ""
        steps.say(f"  graph {variant.label} ({sparse}mask conv as a {variant.mask_conv}, convs "
                  f"{'fused' if variant.fused else 'one each'})")
    return dict(generator=ckpt.build_generator(), encoder=ckpt.build_encoder() if cfg.use_vae else None,
                config=cfg, shapes=shapes, variant=variant, device=device,
                source={"kind": ckpt.source.get("kind"), "sha256": ckpt.source.get("sha256")})


def _build_device() -> str:
    from .to_pt2 import default_device

    return default_device()


def _masks(cfg: GeneratorConfig, shapes: Shapes, options: ExportOptions, steps: Steps):
    from .calibration import calibration_masks, class_coverage, default_mask_count, warn_if_thin

    size = (shapes.height.opt, shapes.width.opt)
    count = default_mask_count(options.precision) if options.calib_count is None else options.calib_count
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels, instances, described = calibration_masks(cfg, size, count, options.calib_dir)
        if options.precision == "int8":
            warn_if_thin(len(labels))
    for w in caught:  # said in the progress lines, or passed on as warnings when quiet
        if options.verbose:
            steps.say(f"  warning: {w.message}")
        else:
            warnings.warn(w.message, stacklevel=4)
    steps.say(f"  {described}, {size[0]}x{size[1]}; {class_coverage(labels, cfg)}")
    return labels, instances


def export_shapes(cfg: GeneratorConfig, batch: Range | int | None = None, height: Range | int | None = None,
                  width: Range | int | None = None, dynamic_size: bool = False) -> Shapes:
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


# ---------------------------------------------------------------------------------------------- verify, publish
def _verify(job: ExportJob, built: list[Built]) -> tuple[Path, list[VerifyReport]]:
    """Each artifact run by the runtime's own backend (a plan: the ONNX it was built from; ONNX on the CPU provider
    with int8 Q/DQ executed exactly) against eager PyTorch fp32, and in the reduced execution precisions the CPU
    plan may choose for it (`_executions`: bf16 on OpenVINO where this CPU has bf16). Each execution that met its
    gate is recorded in the artifact's metadata (`verified`); only the artifact's own run fails the export. A
    report file, or VerificationError."""
    reports, failed = [], []
    for artifact in built:
        kind = artifact.runnable_kind or kind_named(artifact.meta.format)
        meta = dataclasses.replace(artifact.meta, format=kind.name)
        if kind is not kind_named(artifact.meta.format):
            job.steps.say(f"  {artifact.path.name}: checking the {kind.name} file it was built from "
                          f"({artifact.runnable.name}); the {artifact.meta.format} artifact itself runs on "
                          f"{' or '.join(kind_named(artifact.meta.format).devices)} (gaugan_sdk runtime)")
        verified = {}
        for index, (backend, precision) in enumerate(_executions(kind, meta)):
            report = _verify_one(job, artifact, kind, meta, backend, precision)
            reports.append(report)
            job.steps.say(f"  {report.summary()}{' (on random style images)' if report.role == 'encoder' else ''}")
            if report.passed:
                verified[f"{backend}:{precision or meta.precision}"] = round(min(report.psnr_db, 200.0), 2)
            elif index == 0:
                failed.append(report)
            else:
                job.note(f"{artifact.path.name} on {backend} {precision} missed its gate ({report.failure}): the "
                         f"runtime will not choose it")
        artifact.meta = dataclasses.replace(artifact.meta, verified=verified or None)
    report_path = job.stage / report_name(job.output)
    with atomic_write(report_path) as tmp:
        tmp.write_text(json.dumps([_finite(dataclasses.asdict(r)) for r in reports], indent=2))
    if failed:
        kept = job.output.parent / failed_report_name(job.output)
        shutil.copy(report_path, kept)
        raise VerificationError(f"verification failed: {'; '.join(f'{r.role}: {r.failure}' for r in failed)}; "
                                f"nothing was written except the report {kept} (files of an earlier export "
                                f"to {job.output.name} are left as they were)", reports, kept)
    return report_path, reports


def _executions(kind: ArtifactKind, meta: ArtifactMetadata) -> list[tuple[str, str | None]]:
    """(backend, execution precision) to verify an artifact in: its kind's own runtime as exported (None: the
    file's precision), then OpenVINO bf16 for a float file OpenVINO runs, where OpenVINO is installed and this CPU
    has bf16 arithmetic (elsewhere OpenVINO would run f32, or crash: nothing to verify)."""
    executions = [(kind.backend, "f32" if kind.backend == "openvino" else None)]
    if "openvino" in kind.backends and openvino_bf16_here(meta.precision):
        executions.append(("openvino", "bf16"))
    return executions


def _verify_one(job: ExportJob, artifact: Built, kind: ArtifactKind, meta: ArtifactMetadata, backend_name: str,
                precision: str | None) -> VerifyReport:
    from .verify import generator_feeds, verify_encoder, verify_generator

    int8 = "fused" if backend_name == "openvino" else "exact"  # OpenVINO's int8 is its kernels; ORT's exact Q/DQ
    options = RuntimeOptions(device=meta.device or "cpu", int8_mode=int8, backend=backend_name, precision=precision)
    gates = dict(atol=job.options.atol, rtol=job.options.rtol, min_psnr=job.options.min_psnr,
                 executed_in=EXECUTION_PRECISION.get(precision))
    backend = open_backend(kind, artifact.runnable, meta, options)
    try:
        if meta.role == "generator":
            return verify_generator(backend.run, artifact.path.name, meta, job.generator,
                                    generator_feeds(meta, *job.masks), **gates)
        styles = np.random.default_rng(0).integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
        return verify_encoder(backend.run, artifact.path.name, meta, job.encoder, styles, **gates)
    finally:
        backend.close()


def _finite(report: dict) -> dict:
    """JSON has no infinity: an identical output's PSNR is written as null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in report.items()}


def _publish(files: list[Path], models: list[Path], plan: ExportPlan, options: ExportOptions) -> list[Path]:
    """Move the staged files into the output folder and the Triton model folders into the repository (a folder
    there is replaced only where gaugan-export wrote it, unchanged: checked again now); the generator first."""
    output = plan.output
    if models:
        from .triton import check_repository

        check_repository(Path(options.triton_repo), output.stem)  # nothing of the user's appeared there since
    written = [output.parent / f.name for f in files]
    for f in files:
        f.replace(output.parent / f.name)
    (output.parent / failed_report_name(output)).unlink(missing_ok=True)  # an earlier attempt's, superseded
    if models:
        repo = Path(options.triton_repo)
        repo.mkdir(exist_ok=True)
        for folder in models:
            if (repo / folder.name).exists():
                shutil.rmtree(repo / folder.name)  # gaugan-export's own earlier output, unchanged
            folder.replace(repo / folder.name)
            written.append(repo / folder.name)
    written.sort(key=lambda p: p != output)
    return written


__all__ = ["ExportOptions", "ExportResult", "ExportPlan", "VerificationError", "export_checkpoint", "plan_export",
           "export_shapes", "EXPORT_FORMATS"]
