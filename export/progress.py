"""Progress for long export work: numbered, timed step lines (`Steps`), and a progress bar for long stages
(calibration, the int8 sensitivity search): tqdm on a terminal, nothing where stderr is not one (logs, CI,
pipes) or tqdm is not installed."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], description: str, total: int | None = None,
             enabled: bool | None = None) -> Iterator[T]:
    """`items`, with a progress bar named `description` when `enabled` (None: when stderr is a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            enabled = False
    if not enabled:
        yield from items
        return
    yield from tqdm(items, desc=f"    {description}", total=total, leave=False, file=sys.stderr,
                    dynamic_ncols=True)


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
