"""Progress for long export work: numbered, timed step lines (`Steps`), and progress bars for long stages
(calibration, the int8 sensitivity search, the TensorRT build's phases): tqdm on a terminal, nothing where
stderr is not one (logs, CI, pipes), with --quiet, or where tqdm is not installed (`bars_enabled`)."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def bars_enabled(enabled: bool | None = None) -> bool:
    """Whether progress bars show: when asked (None: where stderr is a terminal) and tqdm is installed."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return bool(enabled) and importlib.util.find_spec("tqdm") is not None


def progress(items: Iterable[T], description: str, total: int | None = None,
             enabled: bool | None = None) -> Iterator[T]:
    """`items`, with a progress bar named `description` where `bars_enabled(enabled)`."""
    if not bars_enabled(enabled):
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=f"    {description}", total=total, leave=False, file=sys.stderr,
                    dynamic_ncols=True)


class Phases:
    """Named progress bars that start, advance and finish on their own (TensorRT's nested build phases).
    Create it only where `bars_enabled`."""

    def __init__(self):
        self.bars: dict[str, object] = {}

    def start(self, name: str, total: int, description: str) -> None:
        from tqdm import tqdm

        self.bars[name] = tqdm(total=total, desc=f"    {description}", leave=False, file=sys.stderr,
                               dynamic_ncols=True, position=len(self.bars))

    def advance(self, name: str, done: int) -> None:
        bar = self.bars.get(name)
        if bar is not None:
            bar.update(done - bar.n)

    def finish(self, name: str) -> None:
        bar = self.bars.pop(name, None)
        if bar is not None:
            bar.close()


class Steps:
    """Numbered, timed progress lines on stdout (`verbose`), and the time each step took."""

    def __init__(self, verbose: bool = True):
        self.verbose, self.count, self.times = verbose, 0, []

    @contextlib.contextmanager
    def __call__(self, what: str):
        self.count += 1
        self.say(f"[{self.count}] {what} ...")
        start = time.perf_counter()
        yield
        self.times.append(time.perf_counter() - start)
        self.say(f"    done in {self.times[-1]:.1f} s")

    def say(self, line: str) -> None:
        if self.verbose:
            print(line, flush=True)

    def total(self) -> float:
        return sum(self.times)
