"""gaugan-export: checkpoints -> verified ONNX (fp32 / fp16 / int8), TensorRT plans, AOTInductor packages.

    from export import export_checkpoint
    result = export_checkpoint("ckpt.pt", format="onnx", precision="fp16", output="engines/city.onnx")

`export_checkpoint` (api.py) is the pipeline; `gaugan-export` (cli.py) its command line. Stages, one file each:
trace (the contract's graphs and their dynamic dimensions), to_onnx, precision (fp16) and int8 / qdq /
calibration, tensorrt, to_pt2, triton, verify.
"""

from .api import ExportResult, VerificationError, fast_variant, export_checkpoint, export_shapes

__all__ = ["ExportResult", "VerificationError", "fast_variant", "export_checkpoint", "export_shapes"]
