"""Run an artifact on real masks and compare it with eager PyTorch fp32.

Gates (overridable; each precision's own, gaugan_sdk.precisions): fp32 elementwise |a - b| <= atol + rtol * |b|
with atol 1e-4 (1 level for uint8 output); fp16 and bf16 PSNR >= 40 dB; int8 PSNR >= 35 dB. PSNR is over
[-1, 1] for float output and [0, 255] for uint8. ONNX artifacts run on ONNX Runtime's CPU provider with int8 Q/DQ
executed exactly (`onnx_runner`); the report says what ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gaugan_sdk.contract import INSTANCE, LABEL, STYLE, Z
from gaugan_sdk.imaging import image_to_uint8, psnr
from gaugan_sdk.metadata import ArtifactMetadata
from gaugan_sdk.models import ConvEncoder, EncoderGraph, GeneratorGraph, SPADEGenerator
from gaugan_sdk.precisions import gate_of

Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


@dataclass
class VerifyReport:
    artifact: str
    role: str
    precision: str
    reference: str
    execution: str  # how the artifact ran (provider; for int8, how its Q/DQ nodes were executed)
    samples: int
    max_abs: float
    mean_abs: float
    psnr_db: float
    uint8_max_levels: int  # worst pixel after conversion to uint8 RGB
    uint8_within_1_level: float  # fraction of uint8 values within 1 level
    atol: float | None
    rtol: float | None
    min_psnr: float | None
    passed: bool
    failure: str | None
    seconds: float

    def summary(self) -> str:
        verdict = "PASS" if self.passed else f"FAIL ({self.failure})"
        return (f"{self.role} {self.precision}: max|d| {self.max_abs:.3g}, mean|d| {self.mean_abs:.3g}, "
                f"PSNR {self.psnr_db:.2f} dB, uint8 worst {self.uint8_max_levels} levels "
                f"({100 * self.uint8_within_1_level:.3f}% within 1) on {self.samples} samples [{self.execution}]: "
                f"{verdict}")


class onnx_runner:  # noqa: N801  (used like a function: onnx_runner(path)(feeds))
    """The runtime's ONNX Runtime backend on the CPU provider, int8 Q/DQ executed exactly as written: what
    TensorRT's int8 computes, and the same on every CPU (the fused integer kernels are not; `gaugan_sdk.cpu`)."""

    def __init__(self, path: str | Path, int8_mode: str = "exact"):
        from gaugan_sdk.backends.onnxruntime import OnnxRuntimeBackend

        self.backend = OnnxRuntimeBackend(path, ["CPUExecutionProvider"], int8_mode=int8_mode)
        self.execution = self.backend.execution

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.backend.run(feeds)


class PsnrProbe:
    """The `measure` that precision conversion takes: PSNR against the fp32 ONNX at `reference` of a candidate
    ONNX model on `feeds` (or their first `samples`), both run by `onnx_runner` (int8 Q/DQ executed exactly).
    `peak` is the images' peak-to-peak: 2 for [-1, 1] float output, 255 for uint8."""

    def __init__(self, reference: str | Path, feeds: dict[str, np.ndarray], scratch: str | Path, peak: float = 2.0):
        self.feeds, self.scratch, self.peak = feeds, Path(scratch), peak
        self.count = len(next(iter(feeds.values())))
        self.expected = self._run(onnx_runner(reference), self.count)

    def __call__(self, candidate, samples: int | None = None) -> float:
        import onnx

        n = self.count if samples is None else min(samples, self.count)
        probe = self.scratch / "probe.onnx"
        onnx.save(candidate, probe)
        try:
            out = self._run(onnx_runner(probe), n)
        finally:
            probe.unlink(missing_ok=True)
        return psnr(out, self.expected[:n], self.peak)

    def _run(self, run: Runner, count: int) -> np.ndarray:
        """One mask per call: at full size a batch of 32 masks' activations would not fit in memory."""
        return np.concatenate([run({k: v[i:i + 1] for k, v in self.feeds.items()})[0] for i in range(count)])


def generator_feeds(meta: ArtifactMetadata, labels: np.ndarray, instances: np.ndarray | None,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """The generator's inputs for label maps (N, H, W) (instance maps: the labels' own boundaries when None)
    and, for style models, z drawn from `seed`."""
    feeds = {LABEL: labels.astype(np.int32)[:, None]}
    if meta.takes_instance:
        feeds[INSTANCE] = (instances if instances is not None else labels).astype(np.int32)[:, None]
    if meta.z_dim is not None:
        feeds[Z] = np.random.default_rng(seed).standard_normal((len(labels), meta.config.z_dim)).astype(np.float32)
    return feeds


def verify_generator(run: Runner, artifact: str, meta: ArtifactMetadata, generator: SPADEGenerator,
                     feeds: dict[str, np.ndarray], **gates) -> VerifyReport:
    """Compare the artifact with the eager fp32 reference graph on `feeds` (run in chunks of the max batch);
    an artifact that takes one mask for N styles also runs the first mask with two styles, against the
    reference on the mask repeated."""
    start = time.perf_counter()
    reference = GeneratorGraph(generator, follows_input=meta.shapes.follows_input(meta.config)).eval()
    chunks = list(_chunks(feeds, meta.batch.max))
    if meta.broadcasts_label and meta.batch.max >= 2 and len(feeds[Z]) >= 2:
        shared = {k: v[:1] if k != Z else v[:2] for k, v in feeds.items()}
        chunks.append((shared, {k: np.repeat(v, 2, axis=0) if k != Z else v for k, v in shared.items()}))
    outputs, expected = [], []
    for chunk in chunks:
        given, repeated = chunk if isinstance(chunk, tuple) else (chunk, chunk)
        outputs.append(run(given)[0])
        with torch.no_grad():
            expected.append(reference(*[torch.from_numpy(v) for v in repeated.values()]).numpy())
    out, ref = np.concatenate(outputs), np.concatenate(expected)
    if meta.uint8_output:
        return _compare(out.astype(np.float64), image_to_uint8(ref).astype(np.float64), artifact, meta, 255.0,
                        start, _execution(run), uint8=True, **gates)
    return _compare(out, ref, artifact, meta, 2.0, start, _execution(run), **gates)


def verify_encoder(run: Runner, artifact: str, meta: ArtifactMetadata, encoder: ConvEncoder,
                   styles: np.ndarray, **gates) -> VerifyReport:
    """Compare mu and logvar with the eager encoder on uint8 RGB styles (N, H, W, 3)."""
    start = time.perf_counter()
    reference = EncoderGraph(encoder).eval()
    outputs, expected = [], []
    for chunk in _chunks({STYLE: styles}, meta.batch.max):
        outputs.append(np.concatenate(run(chunk), axis=1))
        with torch.no_grad():
            expected.append(torch.cat(reference(torch.from_numpy(chunk[STYLE])), dim=1).numpy())
    out, ref = np.concatenate(outputs), np.concatenate(expected)
    return _compare(out, ref, artifact, meta, float(np.ptp(ref)) or 1.0, start, _execution(run), **gates)


def _execution(run: Runner) -> str:
    """A runner's words for how it ran: its own `execution`, or its backend's (a bound Backend.run)."""
    return getattr(run, "execution", None) or getattr(getattr(run, "__self__", None), "execution", "as given")


def _chunks(feeds: dict[str, np.ndarray], size: int):
    count = len(next(iter(feeds.values())))
    for i in range(0, count, size):
        yield {k: v[i:i + size] for k, v in feeds.items()}


def _compare(out: np.ndarray, ref: np.ndarray, artifact: str, meta: ArtifactMetadata, peak: float, start: float,
             execution: str, *, uint8: bool = False, atol: float | None = None, rtol: float | None = None,
             min_psnr: float | None = None, executed_in: str | None = None) -> VerifyReport:
    gate = gate_of(meta.precision, executed_in)  # the coarsest precision that touched the image
    if uint8 and gate.atol is not None and atol is None:
        atol = 1.0  # one level of rounding
    atol = gate.atol if atol is None else atol
    rtol = (gate.rtol or 0.0) if rtol is None else rtol
    min_psnr = gate.min_psnr if min_psnr is None else min_psnr
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    if uint8:  # already uint8 levels
        levels = diff
    elif meta.role == "generator":
        levels = np.abs(image_to_uint8(out).astype(int) - image_to_uint8(ref).astype(int))
    else:  # mu / logvar are not images
        levels = np.zeros(1)
    quality = psnr(out, ref, peak)
    failure = None
    if atol is not None and not np.all(diff <= atol + rtol * np.abs(ref)):
        worst = np.unravel_index(np.argmax(diff - rtol * np.abs(ref)), diff.shape)
        failure = f"|d| {diff[worst]:.3g} at {tuple(int(i) for i in worst)} exceeds atol {atol} + rtol {rtol}"
    elif min_psnr is not None and quality < min_psnr:
        failure = f"PSNR {quality:.2f} dB below {min_psnr} dB"
    return VerifyReport(artifact=artifact, role=meta.role, precision=meta.precision,
                        reference="eager PyTorch fp32 (CPU)", execution=execution, samples=len(out), max_abs=float(diff.max()),
                        mean_abs=float(diff.mean()), psnr_db=quality, uint8_max_levels=int(levels.max()),
                        uint8_within_1_level=float((levels <= 1).mean()), atol=atol, rtol=rtol, min_psnr=min_psnr,
                        passed=failure is None, failure=failure, seconds=time.perf_counter() - start)
