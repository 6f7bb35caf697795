"""gaugan-export: checkpoints -> verified ONNX (fp32/fp16), TensorRT plans; see export/cli.py.

Stages, one file each: graph (the exported graph contract), to_onnx, precision, tensorrt, calibration, verify.
"""
