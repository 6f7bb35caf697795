"""Small file helpers shared by checkpoints, exports and training (standard library only)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


_NEARLY_FULL = 1 << 20  # a write that failed with less than this left on its disk failed for lack of space


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

    A failure (or a kill) while writing leaves `path` as it was: the old file or nothing, never half a file.
    A write that fails because the disk is full raises OSError(ENOSPC) saying so, whatever the writer said.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory")
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {directory} does not exist")
    # A fresh name the writer creates itself (mkstemp would leave the file at mode 0600). It keeps the suffix:
    # some writers insist on it (AOTInductor packages must end in .pt2).
    tmp_path = directory / f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}"
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as e:
        full = _disk_full(e, directory)  # measured before the partial file is removed
        tmp_path.unlink(missing_ok=True)
        if full:  # writers report it their own way (torch.save: "unexpected pos ...", "basic_ios::clear")
            raise OSError(errno.ENOSPC, f"no space left on the disk holding {directory} while writing {path.name} "
                                        f"({_size(shutil.disk_usage(directory).free)} free now); {path.name} is "
                                        f"unchanged: free some space and try again") from e
        raise


def _disk_full(error: BaseException, directory: Path) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    if not isinstance(error, (OSError, RuntimeError)):
        return False
    try:
        return shutil.disk_usage(directory).free < _NEARLY_FULL
    except OSError:
        return False


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 2**10:.0f} KiB"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
