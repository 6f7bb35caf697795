"""A progress bar for long export stages (calibration, the int8 sensitivity search): tqdm on a terminal,
nothing where stderr is not one (logs, CI, pipes) or tqdm is not installed."""

from __future__ import annotations

import sys
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
