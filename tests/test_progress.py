"""Progress on long export work: bars only where stderr is a terminal (or when asked), never in logs, pipes or
with --quiet; the TensorRT builder's progress monitor (NVIDIA's IProgressMonitor interface) drives them."""

from __future__ import annotations

import io
from types import SimpleNamespace

from export import progress as progress_module
from export.progress import Phases, bars_enabled, progress
from export.tensorrt import progress_monitor


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_or_when_asked(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a pipe, a log file, CI
    assert not bars_enabled() and bars_enabled(True) and not bars_enabled(False)
    assert list(progress(range(3), "quiet")) == [0, 1, 2]
    monkeypatch.setattr("sys.stderr", Terminal())
    assert bars_enabled() and not bars_enabled(False)
    assert list(progress(range(3), "calibration", 3)) == [0, 1, 2]
    assert "calibration" in progress_module.sys.stderr.getvalue()


def test_tensorrt_progress_monitor_shows_each_phase(monkeypatch):
    class IProgressMonitor:  # stands in for tensorrt.IProgressMonitor, whose name the API test checks
        def __init__(self):
            pass

    trt = SimpleNamespace(IProgressMonitor=IProgressMonitor)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert progress_monitor(trt) is None and progress_monitor(trt, False) is None  # not a terminal / --quiet
    assert progress_monitor(SimpleNamespace(), True) is None  # a TensorRT without the interface
    monitor = progress_monitor(trt, True)
    assert isinstance(monitor, IProgressMonitor)
    monitor.phase_start("Building engine", None, 4)
    monitor.phase_start("Tactic selection", "Building engine", 2)
    assert all(monitor.step_complete("Tactic selection", s) for s in range(2))  # True: go on building
    monitor.phase_finish("Tactic selection")
    assert monitor.step_complete("Building engine", 0)
    assert list(monitor.phases.bars) == ["Building engine"] and monitor.phases.bars["Building engine"].n == 1
    monitor.phase_finish("Building engine")
    assert monitor.phases.bars == {}
    assert "TensorRT Building engine" in progress_module.sys.stderr.getvalue()


def test_phases_ignore_steps_of_phases_they_did_not_start():
    phases = Phases()
    phases.advance("never started", 3)  # TensorRT may report a phase whose start came before the monitor
    phases.finish("never started")
    assert phases.bars == {}
