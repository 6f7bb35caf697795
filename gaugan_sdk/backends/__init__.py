"""Backends, one file each, chosen by artifact suffix; each imports its library only when it is opened."""

from .base import Backend

SUFFIXES = {".onnx": "onnxruntime", ".plan": "tensorrt", ".engine": "tensorrt", ".pt2": "aoti",
            ".pt": "torch", ".pth": "torch"}

__all__ = ["Backend", "SUFFIXES"]
