"""What an export's writers share: the job (the loaded model, its resolved shapes and graph variant, the masks,
the staging folder, the options) and what each writer hands back (`Built`).

Each artifact kind names its writer (`gaugan_sdk.kinds.ArtifactKind.writer`): a module of `export` with
`write(job) -> list[Built]` (the generator first, then its style encoder) and, optionally, `preflight(options)`,
which refuses what this machine cannot build before any work (TensorRT not installed, an fp16 .pt2 without CUDA).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.contract import GraphVariant, Shapes
from gaugan_sdk.kinds import ArtifactKind
from gaugan_sdk.metadata import ArtifactMetadata

from .options import ExportOptions
from .precision import ConversionSettings
from .progress import Steps


@dataclass
class Built:
    """One artifact in the staging folder, and what verification runs for it: the artifact itself, or (a
    TensorRT plan) the ONNX it was built from, of kind `runnable_kind`; `extras`: other files published beside it
    (a plan keeps its ONNX)."""

    path: Path
    meta: ArtifactMetadata
    runnable: Path | None = None
    runnable_kind: ArtifactKind | None = None
    extras: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.runnable = self.runnable or self.path


@dataclass
class ExportJob:
    options: ExportOptions
    kind: ArtifactKind
    output: Path  # the final generator artifact path (its folder holds every file the export writes)
    generator: Any  # SPADEGenerator (eval mode)
    encoder: Any | None  # ConvEncoder of a style model
    config: GeneratorConfig
    shapes: Shapes  # resolved
    variant: GraphVariant
    masks: tuple[np.ndarray, np.ndarray | None]  # calibration / verification label and instance maps
    source: dict[str, Any]  # the checkpoint: kind, sha256
    stage: Path  # the staging folder; files move to output.parent when everything passed
    steps: Steps
    device: str  # the device the artifacts are made for (kinds.ArtifactKind.device_for)
    notes: list[str] = field(default_factory=list)

    @property
    def precision(self) -> str:
        return self.options.precision

    @property
    def encoder_name(self) -> str | None:
        """The style encoder's file name, beside the generator (None without a style path)."""
        return None if self.encoder is None else f"{self.output.stem}_encoder{self.output.suffix}"

    @property
    def recorded(self) -> dict[str, Any]:
        """What every artifact's metadata records of the export: its source and its options."""
        return {"source": self.source, "export": self.options.to_dict()}

    @property
    def conversion(self) -> ConversionSettings:
        return ConversionSettings(calib_cache=self.output.parent / f"{self.output.name}.calib.json",
                                  int8_max_fp16=self.options.int8_max_fp16,
                                  show_progress=None if self.steps.verbose else False)

    def staged(self, name: str) -> Path:
        return self.stage / name

    def note(self, text: str) -> None:
        """A line the export prints (verbose) and keeps in the result's notes."""
        self.steps.say(f"  {text}")
        self.notes.append(text)


def writer_of(kind: ArtifactKind) -> ModuleType:
    """The export module that writes `kind`."""
    if kind.writer is None:
        raise ValueError(f"gaugan-export does not write {kind.name} artifacts")
    return importlib.import_module(f"{__package__}.{kind.writer}")
