"""Pixel conventions shared by every backend (numpy; the exported graphs implement the same formulas).

- model images are float (N, 3, H, W) in [-1, 1]; user images are uint8 RGB (N, H, W, 3)
- to uint8: round((x + 1) * 127.5), clipped to 0..255
- from uint8: x / 127.5 - 1 (the reference's ToTensor + Normalize(0.5, 0.5) up to float rounding)
"""

from __future__ import annotations

import numpy as np

__all__ = ["image_to_uint8", "uint8_to_image", "psnr"]


def image_to_uint8(image: np.ndarray) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3)."""
    image = np.asarray(image, dtype=np.float32)
    return np.clip(np.round((image + 1) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def uint8_to_image(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    return (np.asarray(rgb).astype(np.float32) / 127.5 - 1).transpose(0, 3, 1, 2)


def psnr(test: np.ndarray, reference: np.ndarray, peak_to_peak: float = 2.0) -> float:
    """PSNR in dB of `test` against `reference` (images in [-1, 1] by default: peak-to-peak 2)."""
    mse = float(np.mean((np.asarray(test, np.float64) - np.asarray(reference, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(peak_to_peak ** 2 / mse))
