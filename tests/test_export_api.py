"""The Python export API (`export.export_checkpoint`): real exports of tiny checkpoints, the result object, clear
exceptions, and no process-global state left changed."""

from __future__ import annotations

import json
import re
import logging
import os

import pytest
import torch

from export import ExportOptions, ExportResult, VerificationError, export_checkpoint
from gaugan_sdk import Synthesizer
from gaugan_sdk.contract import Range, generator_io
from gaugan_sdk.metadata import read_sidecar, sidecar_path
from helpers import tiny_config


def test_onnx_fp32_returns_what_it_wrote_and_leaves_global_state_alone(checkpoints, tmp_path, capsys):
    torch_onnx = logging.getLogger("torch.onnx")
    level = torch_onnx.level
    result = export_checkpoint(checkpoints / "city.pt", format="onnx", output=tmp_path / "city.onnx",
                               batch=(1, 2, 4), calib_count=2, verbose=False)
    assert capsys.readouterr().out == ""  # verbose=False: quiet
    assert isinstance(result, ExportResult) and result.output == tmp_path / "city.onnx"
    assert sorted(p.name for p in result.artifacts) == ["city.onnx", "city.onnx.json", "city.onnx.verify.json"]
    assert all(p.is_file() for p in result.artifacts)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in result.artifacts)  # nothing else
    (meta,) = result.metadata
    cfg = tiny_config("cityscapes")
    assert meta.batch == Range(1, 2, 4) and (meta.inputs, meta.outputs) == generator_io(cfg, meta.shapes)
    assert read_sidecar(result.output) == meta
    report, *others = result.verification  # the artifact's own run first; then bf16 where the plan may use it
    assert report.passed and report.max_abs <= 1e-4 and report.samples == 2 and "ONNX Runtime" in report.execution
    assert all("OpenVINO" in r.execution and "bf16" in r.execution for r in others)
    assert json.loads((tmp_path / "city.onnx.verify.json").read_text())[0]["passed"]
    assert torch_onnx.level == level


@pytest.mark.slow  # the same exports through the CLI run by default (test_export's test_cli_*)
def test_fp16_style_model_and_int8(checkpoints, tmp_path, capsys):
    result = export_checkpoint(checkpoints / "coco.pt", format="onnx", precision="fp16",
                               output=tmp_path / "coco.onnx", batch=4, calib_count=2)
    printed = capsys.readouterr().out
    assert "[1] load checkpoint" in printed and "verify against eager PyTorch fp32" in printed
    assert [m.role for m in result.metadata] == ["generator", "encoder"]
    assert {r.role for r in result.verification} == {"generator", "encoder"}
    assert {r.precision for r in result.verification} == {"fp16"} and all(r.passed for r in result.verification)
    assert result.metadata[0].encoder == "coco_encoder.onnx" and (tmp_path / "coco_encoder.onnx").is_file()
    assert any("kept in fp32" in note for note in result.precision_notes)
    with pytest.warns(UserWarning, match="fewer than 16"):
        int8 = export_checkpoint(checkpoints / "city.pt", format="onnx", precision="int8",
                                 output=tmp_path / "city8.onnx", calib_count=4, verbose=False)
    (report,) = int8.verification  # int8: its own run only (OpenVINO runs int8 on its kernels, not in bf16)
    assert int8.metadata[0].precision == "int8" and report.passed and "disable_quant_qdq" in report.execution
    assert any("convs in int8" in note for note in int8.precision_notes)
    assert (tmp_path / "city8.onnx.calib.json").is_file()


def test_pt2_package_runs_in_the_runtime(checkpoints, tmp_path):
    from torch._inductor import config as inductor_config

    threads = inductor_config.compile_threads
    result = export_checkpoint(checkpoints / "city.pt", format="pt2", output=tmp_path / "city.pt2", batch=2,
                               calib_count=2, verbose=False)
    assert result.verification[0].passed and result.metadata[0].format == "pt2"
    assert inductor_config.compile_threads == threads and "TORCHINDUCTOR_COMPILE_THREADS" not in os.environ
    with Synthesizer(result.output) as syn:
        assert syn.backend == "aoti" and syn.run(torch.zeros(64, 128, dtype=torch.int32).numpy()).shape == (64, 128, 3)


@pytest.mark.parametrize("options, error, message", [
    (dict(format="tflite"), ValueError, "format='tflite'; accepted: engine, onnx, openvino, pt2, trt"),
    (dict(precision="int4"), ValueError, "precision='int4'; accepted: fp32, fp16, int8"),
    (dict(batch=0), ValueError, "batch 0: must be >= 1"),
    (dict(batch=(4, 1, 8)), ValueError, r"batch range \(4, 1, 8\): expected"),
    (dict(output="m.plan"), ValueError, "must end in .onnx for format 'onnx'"),
    (dict(output="missing/m.onnx"), FileNotFoundError, "does not exist"),
    (dict(format="pt2", precision="int8", output="m.pt2"), ValueError, "format 'pt2' takes precisions fp32, fp16, not "
                                                                       "'int8'"),
    (dict(overrides=["ngf"]), ValueError, "expected KEY=VALUE"),
    (dict(calib_count=0), ValueError, r"calib_count=0; accepted: an int >= 1"),
    # wrong types, answered with the value and what is accepted (not Python's own text)
    (dict(verify="yes"), TypeError, r"verify='yes'; accepted: True or False or None"),
    (dict(uint8_output=1), TypeError, r"uint8_output=1; accepted: True or False"),
    (dict(batch="8"), TypeError, r"batch='8'; accepted: an int, a \(min, opt, max\) triple"),
    (dict(batch=2.5), TypeError, r"batch=2.5; accepted: an int"),
    (dict(calib_count=None, precision=None), ValueError, r"precision=None; accepted: fp32, fp16, int8"),
    (dict(output=["m.onnx"]), TypeError, r"output=\['m.onnx'\]; accepted: a path"),
    (dict(workspace_gb="4"), ValueError, r"workspace_gb='4'; accepted: a finite number > 0"),
    (dict(graph="reference", fused=True), ValueError, "the reference graph has no mask-conv or fusion choice"),
    (dict(bogus=1), TypeError, r"unknown export option\(s\) 'bogus'; accepted: format, precision"),
    # sizes no machine has: refused from the options, before the checkpoint is read
    (dict(height=3_200_000, width=64), ValueError, r"exceed 67,108,864 pixels in one call"),
    (dict(height=3_200_000), ValueError, r"batch 8 x 3200000 x 128 pixels at the ranges' maxima is 3,276,800,000 pixels"),
    (dict(triton_instances=0), ValueError, r"triton_instances=0; accepted: an int >= 1"),
    (dict(min_psnr=float("nan")), ValueError, r"min_psnr=nan; accepted: a finite number > 0"),
    (dict(atol=-1), ValueError, r"atol=-1; accepted: a finite number >= 0"),
    (dict(triton_repo=__file__), ValueError, "test_export_api.py is a file; give a folder"),
])
def test_bad_options_raise_clear_exceptions_and_write_nothing(checkpoints, tmp_path, monkeypatch, options, error,
                                                              message):
    monkeypatch.chdir(tmp_path)
    options = {"format": "onnx", "output": "m.onnx", **options}
    with pytest.raises(error, match=message):
        export_checkpoint(checkpoints / "city.pt", verbose=False, **options)
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_raises_with_its_report(checkpoints, tmp_path):
    with pytest.raises(VerificationError, match="verification failed") as failure:
        export_checkpoint(checkpoints / "city.pt", format="onnx", output=tmp_path / "m.onnx", atol=1e-12,
                          calib_count=2, verbose=False)
    assert failure.value.report == tmp_path / "m.onnx.verify.failed.json" and not failure.value.reports[0].passed
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx.verify.failed.json"]


def test_a_failed_reexport_leaves_the_good_artifact_and_its_report_as_they_were(checkpoints, tmp_path):
    good = export_checkpoint(checkpoints / "city.pt", format="onnx", output=tmp_path / "m.onnx", calib_count=2,
                             verbose=False)
    before = {p.name: p.read_bytes() for p in good.artifacts}
    with pytest.raises(VerificationError, match="left as they were"):
        export_checkpoint(checkpoints / "city.pt", format="onnx", output=tmp_path / "m.onnx", atol=1e-12,
                          calib_count=2, verbose=False)
    assert {p.name: p.read_bytes() for p in good.artifacts} == before  # the good report still says passed
    assert json.loads((tmp_path / "m.onnx.verify.json").read_text())[0]["passed"]
    assert not json.loads((tmp_path / "m.onnx.verify.failed.json").read_text())[0]["passed"]
    export_checkpoint(checkpoints / "city.pt", format="onnx", output=tmp_path / "m.onnx", calib_count=2,
                      verbose=False)
    assert not (tmp_path / "m.onnx.verify.failed.json").exists()  # superseded by the good export


def test_output_that_is_the_checkpoint_or_a_folder_is_refused_before_any_work(checkpoints, tmp_path):
    ckpt = tmp_path / "model.pt2"
    ckpt.write_bytes((checkpoints / "city.pt").read_bytes())
    before = ckpt.read_bytes()
    with pytest.raises(ValueError, match="would overwrite the checkpoint file"):
        export_checkpoint(ckpt, format="pt2", output=ckpt, verbose=False)
    assert ckpt.read_bytes() == before
    (tmp_path / "out.onnx").mkdir()
    with pytest.raises(ValueError, match="is a folder; give the artifact's file path"):
        export_checkpoint(checkpoints / "city.pt", format="onnx", output=tmp_path / "out.onnx", verbose=False)


def test_a_read_only_output_folder_is_a_clear_error(checkpoints, tmp_path):
    """A folder without write permission, or, for root (who ignores permission bits), a read-only tmpfs."""
    import subprocess

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    mounted = False
    if os.access(locked, os.W_OK):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(locked)],
                                 capture_output=True).returncode == 0
        if not mounted:
            pytest.skip("this user writes to read-only folders and cannot mount a read-only file system")
    try:
        with pytest.raises(PermissionError, match="the folder .*locked is not writable"):
            export_checkpoint(checkpoints / "city.pt", format="onnx", output=locked / "m.onnx", verbose=False)
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(locked)], check=False)


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(checkpoints, tmp_path):
    """gaugan-export killed (-9) mid-export leaves its staging folder; the next export into that folder removes
    it, and leaves alone the staging folder of an export that is still running."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "export.cli", "--checkpoint", str(checkpoints / "city.pt"),
                             "--format", "onnx", "--output", str(tmp_path / "m.onnx"), "--calib-count", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # until the export has staged something
            stages = list(tmp_path.glob(".gaugan-export-*"))
            if stages and any(p.name != "owner" for p in stages[0].iterdir()):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the export never staged a file")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (killed,) = tmp_path.glob(".gaugan-export-*")
    assert not (tmp_path / "m.onnx").exists()
    alive = tmp_path / ".gaugan-export-running"
    alive.mkdir()
    (alive / "owner").write_text(f"{socket.gethostname()} {os.getpid()}")  # a live export's: kept
    export_checkpoint(checkpoints / "city.pt", format="onnx", output=tmp_path / "m.onnx", calib_count=2,
                      verbose=False)
    assert not killed.exists() and list(tmp_path.glob(".gaugan-export-*")) == [alive]
    assert (tmp_path / "m.onnx").is_file()


def test_missing_onnx_runtime_is_said_at_once_with_the_install_command(checkpoints, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ImportError, match=r"verification runs the onnx model with onnxruntime, which is not "
                                          r"installed here: pip install \"gaugan-sdk\[onnxruntime\]\".*--no-verify"):
        export_checkpoint(checkpoints / "city.pt", format="onnx", output=tmp_path / "m.onnx", verbose=False)
    with pytest.raises(ImportError, match="the int8 conversion .* runs the onnx model with onnxruntime"):
        export_checkpoint(checkpoints / "city.pt", format="onnx", precision="int8", verify=False,
                          output=tmp_path / "m.onnx", verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_options_round_trip_through_json_and_every_sidecar_records_them(checkpoints, tmp_path):
    options = ExportOptions(format="onnx", batch=(1, 2, 4), graph="sparse", dense_above=0.3, calib_count=2,
                            output=tmp_path / "city.onnx", overrides=["ngf=8"], verbose=False)
    assert ExportOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    # (the sparse graph's threshold in the metadata: test_sparse's exports; a fast graph keeps this one quick)
    options = options.replace(graph="fast", dense_above=None, mask_conv="lookup", overrides={})
    result = export_checkpoint(checkpoints / "city.pt", options, verify=False)
    recorded = json.loads(sidecar_path(result.output).read_text())["export"]
    assert ExportOptions.from_dict(recorded) == options.replace(verify=False) == result.options
    assert result.metadata[0].variant.mask_conv == "lookup"  # the options asked it; the metadata records it


def test_the_command_line_is_built_from_the_option_fields():
    """Every option field the command line offers has a flag, and --help says what each format takes (the kind
    rows' data, as the API's refusals read them)."""
    import dataclasses

    from export.cli import build_parser
    from gaugan_sdk.kinds import KINDS

    parser = build_parser()
    dests = {a.dest for a in parser._actions}
    offered = {f.name for f in dataclasses.fields(ExportOptions) if f.metadata["cli"]}
    assert offered <= dests and {"height", "width"} - dests == {"height", "width"}
    text = parser.format_help()
    for kind in KINDS:
        if kind.export_format:
            assert re.search(rf"\n  {kind.export_format} +{', '.join(kind.precisions)} ", text), kind.export_format


def test_fp16_without_onnx_runtime_is_refused_before_any_work_even_unverified(checkpoints, tmp_path, monkeypatch):
    """The fp16 conversion measures each candidate with ONNX Runtime: --no-verify does not make it optional."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ImportError, match="the fp16 conversion .* runs the onnx model with onnxruntime"):
        export_checkpoint(checkpoints / "city.pt", format="onnx", precision="fp16", verify=False,
                          output=tmp_path / "m.onnx", verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_the_exporters_own_loggers_are_quiet_for_an_export_and_restored_after(capfd):
    """verbose=False printed the exporter's warnings (the sparse graph's If branches: "Attribute type is
    ambiguous" from onnx_ir, on stderr through logging's last-resort handler)."""
    import logging

    from export.to_onnx import EXPORTER_LOGGERS, quiet_exporter

    before = {name: logging.getLogger(name).level for name in EXPORTER_LOGGERS}
    with quiet_exporter():
        logging.getLogger("onnx_ir._convenience").warning("Attribute type is ambiguous")
        logging.getLogger("torch.onnx._internal").warning("progress")
    assert capfd.readouterr().err == ""
    assert {name: logging.getLogger(name).level for name in EXPORTER_LOGGERS} == before
