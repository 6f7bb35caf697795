"""The one measurement harness behind every benchmark command: timing (warm-up, then timed calls; median and
p90), result rows, the table printed and the JSON written, and the machine the numbers belong to.

    from gaugan_sdk.measure import Table, time_calls
    timing = time_calls(lambda: syn.run(labels), warmup=1, iters=5)
    table = Table("runtime", ["artifact", "batch", "median_ms", "p90_ms", "images_per_s"])
    table.add(artifact="city.onnx", **timing.row(batch=1))
    print(table.text()); table.write_json("bench.json")      # rows, the machine (CPU flags), the notes

Every figure a benchmark prints comes from `time_calls` in one process, side by side; a number that depends on
the CPU carries the machine's description (`machine()`: model name, the flags that decide int8 and bf16 speed,
threads). On CUDA pass `sync` (wall clock to the end of the device work) or `events` (CUDA events: device time).
Torch-free: gaugan-benchmark runs where only the runtime is installed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._io import atomic_write
from .cpu import cpu_flags

__all__ = ["Timing", "time_calls", "p90", "Table", "machine", "check_writable", "FLAGS_OF_INTEREST"]

# column titles of the common keys (others print as their key)
TITLES = {"size_mb": "size MB", "psnr_db": "PSNR dB", "median_ms": "median ms", "p90_ms": "p90 ms",
          "images_per_s": "img/s", "gmac_per_image": "GMAC"}
# the CPU features that decide which runtime and precision are fastest (gaugan_sdk.cpu)
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile",
                     "asimddp", "bf16", "sve")


def p90(times: Sequence[float]) -> float:
    """The 90th percentile of timings (nearest rank)."""
    return sorted(times)[max(0, round(0.9 * len(times)) - 1)]


@dataclass(frozen=True)
class Timing:
    """The seconds of each timed call (after the warm-up)."""

    seconds: tuple[float, ...]
    warmup: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p90(self) -> float:
        return p90(self.seconds)

    def row(self, batch: int = 1) -> dict[str, Any]:
        """The timing columns of a result row: median / p90 milliseconds per call and items per second."""
        return {"batch": batch, "median_ms": 1000 * self.median, "p90_ms": 1000 * self.p90,
                "images_per_s": batch / self.median if self.median > 0 else math.inf, "iters": len(self.seconds)}


def time_calls(fn: Callable[[], Any], *, warmup: int = 1, iters: int = 5, sync: Callable[[], Any] | None = None,
               events: Callable[[], Any] | None = None) -> Timing:
    """`warmup` untimed calls of `fn`, then `iters` timed ones. `sync` runs after each call, inside its time (CUDA:
    torch.cuda.synchronize, so the time covers the device work); `events` makes a CUDA event
    (`lambda: torch.cuda.Event(enable_timing=True)`): each call is timed between two, on the device."""
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup={warmup!r}; accepted: an int >= 0")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters={iters!r}; accepted: an int >= 1")
    for _ in range(warmup):
        fn()
        if sync is not None:
            sync()
    seconds = []
    for _ in range(iters):
        if events is not None:
            start, end = events(), events()
            start.record()
            fn()
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1000)  # ms on the device
            continue
        began = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        seconds.append(time.perf_counter() - began)
    return Timing(tuple(seconds), warmup)


def machine() -> dict[str, Any]:
    """What the numbers were measured on: the CPU's model and the flags that decide int8 / bf16 speed, threads,
    Python and the versions of the libraries in play (only those already imported or installed)."""
    flags = cpu_flags() or frozenset()
    return {"cpu": _cpu_name(), "machine": platform.machine(), "cores": os.cpu_count(),
            "flags": [f for f in FLAGS_OF_INTEREST if f in flags], "python": sys.version.split()[0],
            "versions": _versions()}


def check_writable(path: str | os.PathLike | None) -> None:
    """Refuse, before a long run, a JSON output that could not be written at its end."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"--json {target}: is a folder; give a file path in a writable folder, e.g. "
                         f"{target / 'results.json'}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"--json {target}: the folder {target.parent} does not exist; give a file path in a "
                                f"writable folder")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"--json {target}: the folder {target.parent} is not writable; give a file path in a "
                              f"writable folder")


class Table:
    """Result rows (dicts) with the columns a command prints; `text()`, `markdown()`, `write_json()`."""

    def __init__(self, title: str, columns: Sequence[str], notes: Iterable[str] = ()):
        self.title, self.columns, self.rows, self.notes = title, list(columns), [], list(notes)

    def add(self, **row: Any) -> dict[str, Any]:
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)

    def text(self) -> str:
        """Fixed-width columns, each as wide as its widest cell."""
        titles = [TITLES.get(c, c) for c in self.columns]
        cells = [[_cell(row.get(c)) for c in self.columns] for row in self.rows]
        widths = [max([len(t)] + [len(r[i]) for r in cells]) for i, t in enumerate(titles)]
        line = lambda values: "  ".join(v.rjust(w) if i else v.ljust(w)  # noqa: E731
                                        for i, (v, w) in enumerate(zip(values, widths)))
        out = [self.title, line(titles), "-" * (sum(widths) + 2 * (len(widths) - 1))]
        out += [line(r) for r in cells] + self.notes
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"| {' | '.join(TITLES.get(c, c) for c in self.columns)} |", f"|{'---|' * len(self.columns)}"]
        out += [f"| {' | '.join(_cell(row.get(c)) for c in self.columns)} |" for row in self.rows]
        return "\n".join(out + [""] + self.notes)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "machine": machine(), "rows": [_finite(r) for r in self.rows],
                "notes": self.notes}

    def write_json(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=2, default=str))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity: an identical image's PSNR is written as null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    import importlib.metadata

    out = {}
    for package in ("numpy", "torch", "onnxruntime", "onnxruntime-gpu", "openvino", "tensorrt"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out
