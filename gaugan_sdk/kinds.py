"""The artifact kinds, one row each: the metadata's `format`, the file suffixes, the runtime backend that runs
them, the export module that writes them, and what each format takes, as data. The export API, its command
line (choices, help) and its errors read these rows; nothing else says which format takes which precision.

A new format is a row here, a writer (`export/<writer>.py`) and a backend (`gaugan_sdk/backends/<backend>.py`);
another runtime for an existing format is a backend module and its name in the row's `backends`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .contract import GRAPH_KINDS, GRAPHS
from .precisions import FILE_PRECISIONS

__all__ = [
    "ArtifactKind", "ONNX", "TENSORRT", "PT2", "OPENVINO", "CHECKPOINT", "KINDS", "FORMATS", "SUFFIXES",
    "EXPORT_FORMATS", "kind_of", "kind_named", "export_kind"
]


@dataclass(frozen=True)
class ArtifactKind:
    name: str  # the metadata's "format"
    suffixes: tuple[str, ...]  # the first is the one gaugan-export writes
    backends: tuple[str, ...]  # the runtime backends that run it (gaugan_sdk.backends.<name>); the first by default
    export_format: str | None = None  # gaugan-export --format; None: not written by gaugan-export
    writer: str | None = None  # the export module that writes it: export.<writer>
    precisions: tuple[str, ...] = ()  # file precisions gaugan-export writes into it (gaugan_sdk.precisions)
    graphs: tuple[str, ...] = ()  # graph kinds it carries (contract.GRAPH_KINDS)
    devices: tuple[str, ...] = ("cpu",)  # where it runs; the first is the one its graph is chosen for
    built_for_device: bool = False  # compiled for the export machine's device type (its graph chosen for that)
    verify: bool = True  # checked against eager PyTorch by default
    triton: str | None = None  # Triton's platform for it; None: Triton does not serve it
    describes_io: bool = False  # its IO (and ranges) can be read from the file: runnable without a sidecar
    records_hash: bool = False  # the file records its weights' sha256 (its backend's weights_sha256 checks it)
    whole_model: bool = False  # one file holds generator and encoder (checkpoints: the backend's open_model)
    via_onnx: bool = False  # written from the export's ONNX (which the fp16 / int8 conversions measure with ONNX
    # Runtime)
    verifies_as: str | None = None  # verified by running another kind (a plan: the ONNX it was built from)
    companions: tuple[str, ...] = ()  # suffixes of files that travel with the artifact (an IR's .bin)
    package: str = ""  # the library its backend imports
    install: str = ""  # how to install that library
    note: str = ""  # said in refusals: what the format is for

    @property
    def suffix(self) -> str:
        return self.suffixes[0]

    @property
    def backend(self) -> str:
        """The backend that runs it by default."""
        return self.backends[0]

    def files(self, path: str | Path) -> list[Path]:
        """The artifact's files: itself and its companions (an IR's .xml and .bin)."""
        path = Path(path)
        return [path, *(path.with_suffix(c) for c in self.companions)]

    def refusal(self, precision: str, graph: str) -> str | None:
        """Why this format cannot carry a `graph` exported in `precision`, or None when it can."""
        fmt = f"format {self.export_format or self.name!r}"
        if precision not in self.precisions:
            return f"{fmt} takes precisions {', '.join(self.precisions)}, not {precision!r} ({self.note})"
        kind = GRAPH_KINDS[graph]
        if graph not in self.graphs or (kind.precisions and precision not in kind.precisions) \
                or not set(kind.devices) & set(self.devices):
            takes = ", ".join(k.export_format for k in KINDS if k.export_format and graph in k.graphs
                              and set(GRAPH_KINDS[graph].devices) & set(k.devices))
            precisions = ", ".join(kind.precisions or FILE_PRECISIONS)
            return (f"graph={graph!r} is exported as format {takes} in precision {precisions}, on "
                    f"{' or '.join(kind.devices)} (got {fmt}, precision {precision!r}): {kind.why}")
        return None

    def device_for(self, build_device: str) -> str:
        """The device an artifact of this kind is made for, on a machine whose torch device is `build_device`."""
        return build_device if self.built_for_device else self.devices[0]


_TORCH = "pip install \"gaugan-sdk[export]\" (after the torch build that fits the machine)"
ONNX = ArtifactKind("onnx", (".onnx",), ("onnxruntime", "openvino"), "onnx", "to_onnx", FILE_PRECISIONS, GRAPHS,
                    ("cpu", "cuda"),
                    triton="onnxruntime_onnx", describes_io=True, records_hash=True, via_onnx=True,
                    package="onnxruntime",
                    install="pip install \"gaugan-sdk[onnxruntime]\" (CPU) or \"gaugan-sdk[gpu]\" (CUDA; never both)",
                    note="ONNX Runtime on CPUs and GPUs; TensorRT builds it later")
TENSORRT = ArtifactKind("tensorrt", (".plan", ".engine"), ("tensorrt",), "trt", "tensorrt", FILE_PRECISIONS,
                        ("reference", "fast"), ("cuda",), verify=False, triton="tensorrt_plan", describes_io=True,
                        via_onnx=True, verifies_as="onnx", package="tensorrt",
                        install="pip install \"gaugan-sdk[trt]\" on a machine with an NVIDIA GPU and driver",
                        note="a plan for one GPU and TensorRT version, built from the verified ONNX")
PT2 = ArtifactKind("pt2", (".pt2",), ("aoti",), "pt2", "to_pt2", ("fp32", "fp16"), ("reference", "fast"),
                   ("cpu", "cuda"), built_for_device=True, package="torch", install=_TORCH,
                   note="AOTInductor packages are fp32 or fp16 (CUDA); int8 is Q/DQ ONNX for ONNX Runtime and TensorRT")
OPENVINO = ArtifactKind("openvino", (".xml",), ("openvino",), "openvino", "to_openvino", FILE_PRECISIONS, GRAPHS,
                        ("cpu",), describes_io=True, records_hash=True, via_onnx=True, companions=(".bin",),
                        package="openvino",
                        install="pip install \"gaugan-sdk[openvino]\"",
                        note="an OpenVINO IR (.xml + .bin) for CPUs: bf16 / int8 on their matrix units where they "
                             "have them; fp16 stores the weights in fp16")
CHECKPOINT = ArtifactKind("checkpoint", (".pt", ".pth"), ("torch",), devices=("cpu", "cuda"), verify=False,
                          whole_model=True, package="torch", install=_TORCH)
KINDS = (ONNX, TENSORRT, PT2, OPENVINO, CHECKPOINT)

FORMATS = tuple(k.name for k in KINDS)
SUFFIXES = {suffix: kind for kind in KINDS for suffix in kind.suffixes}
# gaugan-export --format values: each kind's own, and "engine" (Ultralytics' name for a TensorRT plan; it writes
# .engine files, which load like .plan ones)
EXPORT_FORMATS = {kind.export_format: kind for kind in KINDS if kind.export_format} | {"engine": TENSORRT}


def kind_of(path) -> ArtifactKind:
    """The kind of an artifact path, by suffix; a ValueError naming the accepted suffixes otherwise."""
    suffix = Path(path).suffix
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown artifact suffix {suffix!r}; accepted: {', '.join(sorted(SUFFIXES))}")
    return SUFFIXES[suffix]


def kind_named(name: str) -> ArtifactKind:
    for kind in KINDS:
        if kind.name == name:
            return kind
    raise ValueError(f"artifact format {name!r}; accepted: {', '.join(FORMATS)}")


def export_kind(fmt: str) -> ArtifactKind:
    """The kind gaugan-export's `--format` value names."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format={fmt!r}; accepted: {', '.join(sorted(EXPORT_FORMATS))}")
    return EXPORT_FORMATS[fmt]
