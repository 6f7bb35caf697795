"""Check a dataset's files before training starts, so that a bad file is found in seconds, not hours in.

The structural scan reads only headers: every label map, image and instance map opens as an image, is not a
decompression bomb (Pillow's Image.MAX_IMAGE_PIXELS guard), label maps are single-channel ids, and the files of
a pair have one size. It also reads each PNG / JPEG file's last bytes: a file that does not end as its format
does (IEND, EOI) is decoded on the spot, so a truncated file is found at start for the cost of a seek (one with
data after its end decodes and passes). `--check-data` decodes every file (label maps, images, instance maps,
finding damage inside intact files too) and checks the label ids against the model. Each problem names its
file; the caller refuses the dataset or, with --skip-bad, drops those pairs.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.labels import validate_label_ids

LABEL_MODES = ("L", "P", "I", "I;16")
_ENDS = {"PNG": b"IEND\xaeB`\x82", "JPEG": b"\xff\xd9"}  # how a complete file of the format ends


class DataError(ValueError):
    """A file of the dataset cannot be used: names the file and what is wrong."""


@dataclass(frozen=True)
class FilePair:
    label: Path
    image: Path
    instance: Path | None = None


def open_image(path: Path, what: str, load: bool = True) -> Image.Image:
    """The image at `path` (decoded when `load`); any failure, a decompression bomb included, as a DataError
    naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            try:
                if load or _ends_early(path, image.format):  # a truncated file fails here, naming itself
                    image.load()
            except BaseException:
                image.close()  # a scan of thousands of files holds no handles, failed ones included
                raise
        return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(f"{what} {path} is refused as a decompression bomb: {err} (raise PIL.Image.MAX_IMAGE_PIXELS "
                        f"if such sizes are real)") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DataError(f"cannot read {what} {path}: {err}") from None


def _ends_early(path: Path, fmt: str | None) -> bool:
    """Whether a PNG / JPEG file does not end with its format's end marker (truncated, or data appended)."""
    end = _ENDS.get(fmt or "")
    if end is None:
        return False
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - len(end)))
        return f.read() != end


def keyed(paths: Iterable[Path], key: Callable[[Path], str], what: str) -> tuple[dict[str, Path], list[str]]:
    """Files by their pairing key, and a problem for each key that more than one file claims (`s0.png` and
    `s0.jpg`): none of them is paired, rather than one picked silently."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(key(path), []).append(path)
    problems = [f"{what}: {len(found)} files for '{k}' ({', '.join(str(p) for p in found)}); keep one"
                for k, found in sorted(groups.items()) if len(found) > 1]
    return {k: found[0] for k, found in groups.items() if len(found) == 1}, problems


def scan(pairs: list[FilePair], cfg: GeneratorConfig, *, decode: bool = False,
         report: bool = False) -> tuple[list[FilePair], list[str]]:
    """The pairs whose files pass the scan, and one problem per pair that does not. `decode`: also decode every
    file (label map, image, instance map) and check the label ids (--check-data). `report`: a progress line on
    stderr and a summary line."""
    good, problems = [], []
    start, shown = time.perf_counter(), 0.0
    for i, pair in enumerate(pairs):
        try:
            _check_pair(pair, cfg, decode)
            good.append(pair)
        except DataError as err:
            problems.append(str(err))
        now = time.perf_counter()
        if report and sys.stderr.isatty() and now - shown > 0.5:
            print(f"\rdata: checked {i + 1}/{len(pairs)} pairs", end="", file=sys.stderr, flush=True)
            shown = now
    if report:
        kind = "decoded, label ids checked" if decode else "headers (--check-data decodes every file)"
        print(f"\rdata: checked {len(pairs)} pairs ({kind}) in {time.perf_counter() - start:.1f} s: "
              f"{len(problems)} with problems", file=sys.stderr, flush=True)
    return good, problems


def _check_pair(pair: FilePair, cfg: GeneratorConfig, decode: bool) -> None:
    with open_image(pair.label, "label map", load=decode) as label:  # closed at once: a scan of thousands
        if label.mode not in LABEL_MODES:
            raise DataError(f"label map {pair.label} is {label.mode}; label maps must be single-channel class ids "
                            f"(8- or 16-bit gray PNG), not colour masks")
        for path, what in ((pair.image, "image"), (pair.instance, "instance map")):
            if path is None:
                continue
            with open_image(path, what, load=decode) as other:
                if other.size != label.size:
                    raise DataError(f"{what} {path} is {other.size[0]}x{other.size[1]} but its label map "
                                    f"{pair.label} is {label.size[0]}x{label.size[1]}")
        if decode:
            try:
                validate_label_ids(np.asarray(label), cfg)
            except ValueError as err:
                raise DataError(f"label map {pair.label}: {err}") from None
