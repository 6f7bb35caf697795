"""The OpenVINO IR artifact (.xml + .bin): the export's verified ONNX (export/to_onnx.py) converted by OpenVINO,
its metadata (and the .bin's sha256) in the IR's rt_info. The writer of `gaugan_sdk.kinds.OPENVINO`.

- fp32: the ONNX graph as it is.
- fp16: the fp32 graph with its weights stored in fp16 (OpenVINO's compressed weights: half the file, decompressed
  at load); the execution precision is the runtime's choice (f32, or bf16 where verified), not the file's.
- int8: the same calibrated symmetric Q/DQ graph as the ONNX (FakeQuantize and int8 weights in the IR), run on
  OpenVINO's integer kernels. Where this CPU has no int8 dot-product instruction those saturate, so the IR is
  verified through the ONNX it came from, Q/DQ executed exactly (what a VNNI or AMX CPU computes), and the
  report says so.
"""

from __future__ import annotations

import dataclasses
import importlib.util

from gaugan_sdk.cpu import int8_saturation_reason
from gaugan_sdk.kinds import ONNX, OPENVINO

from . import to_onnx
from .job import Built, ExportJob
from .options import ExportOptions


def preflight(options: ExportOptions) -> None:
    """Refuse at once, before any work, where OpenVINO is not installed."""
    if importlib.util.find_spec("openvino") is None:
        raise ImportError(f"--format openvino needs the 'openvino' package: {OPENVINO.install}")


def write(job: ExportJob) -> list[Built]:
    """The IRs of an export, in the staging folder: the generator, the style encoder beside it."""
    from gaugan_sdk.backends.openvino import write_ir

    fp16 = job.precision == "fp16"
    onnx_job = dataclasses.replace(job, options=job.options.replace(precision="fp32")) if fp16 else job
    saturates = job.precision == "int8" and int8_saturation_reason()
    built = []
    for onnx_file in to_onnx.write(onnx_job):
        name = job.output.name if onnx_file.meta.role == "generator" else job.encoder_name
        xml = job.staged(name)
        meta = dataclasses.replace(onnx_file.meta, format=OPENVINO.name, export=job.options.to_dict(),
                                   precision="fp16" if fp16 else onnx_file.meta.precision)
        with job.steps(f"OpenVINO IR {xml.name} ({meta.precision}{', weights stored in fp16' if fp16 else ''})"):
            meta = write_ir(onnx_file.path, xml, meta, compress_to_fp16=fp16)
        if saturates and meta.precision == "int8":
            job.note(f"{xml.name}: verified through {onnx_file.path.name}, its Q/DQ executed exactly: OpenVINO's int8 "
                     f"kernels saturate on this CPU ({saturates}); on a CPU with VNNI or AMX they compute this")
            built.append(Built(xml, meta, onnx_file.path, ONNX))
        else:
            built.append(Built(xml, meta))
    return built
