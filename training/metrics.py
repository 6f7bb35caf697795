"""Quality metrics of generated images, as the paper reports them.

FID:  Frechet distance between Inception pool features of real and generated images. The Inception network is a
      TorchScript file the user gives (e.g. the `pt_inception-2015-12-05` model used by pytorch-fid / StyleGAN):
      called on float (N, 3, H, W) images with values 0..255, with `return_features=True` when it accepts it, and
      returning (N, D) features.
mIoU: a segmentation model applied to generated images, scored against the input label maps: a TorchScript file
      (float (N, 3, H, W) RGB in [0, 1] -> logits (N, C, h, w)), or on the procedural dataset the SceneOracle.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ConfusionMatrix", "torchscript_segmenter", "InceptionFeatures", "frechet_distance"]

# ---------------------------------------------------------------------------------------------- mIoU


class ConfusionMatrix:
    """Accumulates (target, prediction) pixel counts over batches; ignores target ids >= num_classes (dontcare)."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.counts = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, target: np.ndarray, prediction: np.ndarray) -> None:
        target, prediction = np.asarray(target).ravel(), np.asarray(prediction).ravel()
        if target.shape != prediction.shape:
            raise ValueError(f"target and prediction sizes differ: {target.size} vs {prediction.size}")
        keep = (target >= 0) & (target < self.num_classes)
        pred = np.clip(prediction[keep], 0, self.num_classes - 1)
        self.counts += np.bincount(target[keep] * self.num_classes + pred,
                                   minlength=self.num_classes ** 2).reshape(self.num_classes, self.num_classes)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for classes absent from both targets and predictions."""
        tp = np.diag(self.counts).astype(np.float64)
        union = self.counts.sum(0) + self.counts.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def mean_iou(self) -> float:
        """Mean over the classes present in the targets (the usual mIoU)."""
        present = self.counts.sum(1) > 0
        return float(np.nanmean(self.iou()[present])) if present.any() else float("nan")

    def accuracy(self) -> float:
        return float(np.diag(self.counts).sum() / max(self.counts.sum(), 1))


def torchscript_segmenter(path: str | os.PathLike, device: torch.device) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 (N, H, W, 3) -> int ids (N, H, W) with a TorchScript segmentation model."""
    model = _load_torchscript(path, "segmentation model", device)

    @torch.no_grad()
    def segment(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 255
        logits = model(x)
        if isinstance(logits, (list, tuple)):
            logits = logits[0]
        if logits.dim() != 4:
            raise ValueError(f"segmentation model {path} returned shape {tuple(logits.shape)}; expected logits "
                             "(N, C, h, w)")
        logits = F.interpolate(logits.float(), size=images.shape[1:3], mode="bilinear", align_corners=False)
        return logits.argmax(1).cpu().numpy()

    return segment


# ---------------------------------------------------------------------------------------------- FID
class InceptionFeatures:
    """Pool features of a TorchScript Inception model from a path (no download)."""

    def __init__(self, path: str | os.PathLike, device: torch.device):
        self.model = _load_torchscript(path, "Inception model", device)
        self.device = device
        self._kwargs: dict | None = None

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> float64 (N, D)."""
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float()
        if self._kwargs is None:
            try:
                out, self._kwargs = self.model(x, return_features=True), {"return_features": True}
            except (RuntimeError, TypeError):
                out, self._kwargs = self.model(x), {}
        else:
            out = self.model(x, **self._kwargs)
        if out.dim() != 2:
            out = out.flatten(1)
        return out.double().cpu().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets (N, D): |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

    tr((S_a S_b)^(1/2)) is the sum of square roots of the eigenvalues of S_a S_b, which are real and >= 0 for
    covariance matrices (up to rounding, clipped)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"FID needs two feature sets (N >= 2, same D), got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(cov_a @ cov_b)
    trace_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def _load_torchscript(path: str | os.PathLike, what: str, device: torch.device) -> torch.jit.ScriptModule:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path} (a TorchScript file; nothing is downloaded)")
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError as err:
        raise ValueError(f"{path} is not a TorchScript {what}: {err}") from None
