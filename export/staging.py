"""Where an export writes, and how it keeps what the user owns safe.

Every file is staged in a hidden folder beside the output (`.gaugan-export-*`, same file system, so the final
moves are renames) and moved into place only when every stage passed. Before any work, the output is checked:
not a folder, not the checkpoint being exported, in a writable folder. A staging folder left by a killed export
(its owner process is gone) is removed by the next export into that folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

STAGE_PREFIX = ".gaugan-export-"
_OWNER = "owner"  # in each staging folder: "<host> <pid>" of the export that made it


def planned_names(output: Path, kind) -> list[str]:
    """Every file name an export of `kind` (gaugan_sdk.kinds) to `output` may write into its folder (the encoder's
    only for style models): the artifacts, their companions (an IR's .bin), the ONNX a plan keeps beside it,
    sidecars, reports, the calibration cache."""
    artifacts = [output.name, f"{output.stem}_encoder{output.suffix}"]
    companions = [f"{Path(a).stem}{c}" for a in artifacts for c in kind.companions]
    if kind.verifies_as:  # a plan keeps the file it was built from beside it
        artifacts += [f"{output.stem}.onnx", f"{output.stem}_encoder.onnx"]
    return [*artifacts, *companions, *(f"{a}.json" for a in artifacts), report_name(output),
            failed_report_name(output), f"{output.name}.calib.json"]


def report_name(output: Path) -> str:
    return f"{output.name}.verify.json"


def failed_report_name(output: Path) -> str:
    """A failed verification's report: its own name, so an earlier good artifact keeps its own good report."""
    return f"{output.name}.verify.failed.json"


def check_output(output: Path, checkpoint: str | os.PathLike, kind) -> None:
    """Refuse, before any work, an output that is a folder, that would overwrite the checkpoint (or a file of
    an NVlabs checkpoint folder), or whose folder is missing or not writable."""
    if output.is_dir():
        raise ValueError(f"output {output} is a folder; give the artifact's file path, e.g. {output / 'model'}"
                         f"{output.suffix or '.onnx'}")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output {output}: the folder {output.parent} does not exist")
    source = Path(checkpoint)
    protected = {p.resolve() for p in (source.iterdir() if source.is_dir() else [source]) if p.exists()}
    for name in planned_names(output, kind):
        target = (output.parent / name).resolve()
        if target in protected:
            raise ValueError(f"output {output} would overwrite the checkpoint file {target}: choose another output")
    if not os.access(output.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"output {output}: the folder {output.parent} is not writable")


def sweep_stale(folder: Path) -> list[Path]:
    """Remove the staging folders in `folder` whose export died (its process is gone on this host); returns
    them. Folders of running exports, of other hosts, or without an owner record are left alone."""
    removed = []
    for stage in folder.glob(f"{STAGE_PREFIX}*"):
        try:
            host, pid = (stage / _OWNER).read_text().split()
        except (OSError, ValueError):
            continue
        if host == socket.gethostname() and not _alive(int(pid)):
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
    return removed


@contextlib.contextmanager
def staging(folder: Path) -> Iterator[Path]:
    """A hidden staging folder in `folder`, removed on the way out whatever happens (a kill -9 aside: then the
    next export's `sweep_stale` removes it)."""
    try:
        stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=folder))
    except PermissionError as e:
        raise PermissionError(f"cannot write in {folder}: {e.strerror}") from None
    try:
        (stage / _OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
