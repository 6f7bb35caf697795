"""Quality metrics of generated images, as the paper reports them.

FID:  torchmetrics' FrechetInceptionDistance over the FID Inception-v3 (training/inception.py) with the weights
      file papers use, from a path: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`. Images resized to 299,
      2048 pool features; the real images' statistics are computed once per run and kept. Below 2048 samples
      the number is not comparable with published FIDs (a warning says so).
mIoU: a segmentation model applied to generated images, scored against the input label maps: a TorchScript file
      (float (N, 3, H, W) RGB in [0, 1] -> logits (N, C, h, w)), or on the procedural dataset the SceneOracle.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ConfusionMatrix", "torchscript_segmenter", "FID", "COMPARABLE_SAMPLES", "frechet_distance"]

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
COMPARABLE_SAMPLES = 2048  # fewer samples bias FID upwards: the number is then not comparable with papers'


class FID:
    """FID of generated against real images, real statistics kept across evaluations (torchmetrics'
    FrechetInceptionDistance with reset_real_features=False)."""

    def __init__(self, weights: str | os.PathLike, device: torch.device):
        from torchmetrics.image.fid import FrechetInceptionDistance

        from .inception import load_fid_inception

        self.device = device
        self.metric = FrechetInceptionDistance(feature=load_fid_inception(weights, device), normalize=True,
                                               reset_real_features=False).to(device)
        self._warned = False

    @property
    def has_real(self) -> bool:
        return int(self.metric.real_features_num_samples) > 0

    @torch.no_grad()
    def update(self, images: np.ndarray, real: bool) -> None:
        """uint8 (N, H, W, 3) RGB images of one side."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float() / 255
        self.metric.update(x, real=real)

    def compute(self) -> float:
        """The FID of the generated images given since the last compute (the real ones stay)."""
        count = int(self.metric.fake_features_num_samples)
        if count < COMPARABLE_SAMPLES and not self._warned:
            warnings.warn(f"FID on {count} generated images: below {COMPARABLE_SAMPLES} samples FID is biased upwards "
                          f"and not comparable with published numbers (raise --eval-samples)", stacklevel=2)
            self._warned = True
        value = float(self.metric.compute())
        self.metric.reset()  # the generated side only
        return value


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
