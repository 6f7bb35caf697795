"""gaugan-export: checkpoints -> verified ONNX (fp32 / fp16 / int8), TensorRT plans, AOTInductor packages.

    from export import ExportOptions, export_checkpoint
    result = export_checkpoint("ckpt.pt", format="onnx", precision="fp16", output="engines/city.onnx")

`export_checkpoint` (api.py) is the pipeline over one `ExportOptions` record (options.py); `gaugan-export`
(cli.py) its command line, built from the same fields. Each artifact kind's writer is a module named in its kind
row (gaugan_sdk.kinds): to_onnx (the ONNX, its precision, the style encoder), tensorrt, to_pt2. Stages they
share: trace (the contract's graphs and their dynamic dimensions), precision (fp16.py, int8.py with qdq.py and
calibration.py), verify, triton, staging, progress.
"""

from .api import ExportResult, VerificationError, export_checkpoint, export_shapes, plan_export
from .options import ExportOptions

__all__ = ["ExportOptions", "ExportResult", "VerificationError", "export_checkpoint", "export_shapes", "plan_export"]
