"""Export: real exports of tiny models, run by real ONNX Runtime sessions, compared with eager PyTorch."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from helpers import LAYOUTS, random_labels, tiny_config
from export import export_checkpoint
from export.calibration import calibration_masks
from export.cli import main as export_main
from export.fp16 import convert_fp16
from export.to_onnx import TRT_PARSER_OPS, _export, export_encoder, export_generator, unsupported_ops
from export.to_pt2 import export_generator_pt2, pt2_runner
from export.trace import TraceSpec
from export.verify import PsnrProbe, generator_feeds, onnx_runner, verify_encoder, verify_generator
from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.contract import Range, Shapes, TensorSpec
from gaugan_sdk.labels import label_set_for, to_semantics
from gaugan_sdk.metadata import ArtifactMetadata, read_sidecar
from gaugan_sdk.models import ConvEncoder, EncoderGraph, GeneratorGraph
from gaugan_sdk.models.semantics import semantics_tensor
from gaugan_sdk.procedural import scene_batch
from helpers import realistic_generator


# ------------------------------------------------------------------------------ in-graph semantics
class SemanticsOnly(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg

    def forward(self, label, instance=None):
        return semantics_tensor(label, instance, self.cfg)


def hand_made_maps():
    label = np.array([[0, 0, 1, 1], [0, 255, 1, 2], [3, 3, 2, 2]], dtype=np.uint8)
    instance = np.array([[5, 5, 5, 6], [5, 5, 6, 6], [7, 7, 7, 7]], dtype=np.int32)
    return label, instance


@pytest.mark.parametrize("preset", ["cityscapes", "ade20k", "coco"])
def test_in_graph_semantics_equal_to_semantics_bit_for_bit(preset, tmp_path):
    cfg = GeneratorConfig.preset(preset)
    labels, instances = random_labels(tiny_config(preset), batch=3, seed=7)
    cases = [(labels, instances)]
    hand_label, hand_instance = hand_made_maps()
    if not cfg.contain_dontcare_label:
        hand_label = np.where(hand_label == 255, 4, hand_label).astype(np.uint8)
    cases.append((hand_label[None], hand_instance[None] if cfg.use_instance else None))
    module = SemanticsOnly(cfg)
    label_t = torch.from_numpy(labels.astype(np.int32))[:, None]
    instance_t = torch.from_numpy(instances)[:, None] if cfg.use_instance else None
    kwargs = {"instance": instance_t} if cfg.use_instance else {}
    batch = torch.export.Dim("batch", min=1, max=8)
    h, w = torch.export.Dim("h", min=2, max=512), torch.export.Dim("w", min=2, max=512)
    shapes = {"label": {0: batch, 2: h, 3: w}, **({"instance": {0: batch, 2: h, 3: w}} if kwargs else {})}
    semantics = TensorSpec("semantics", "float32", ("batch", cfg.semantic_nc, "height", "width"))  # not an IO
    model = _export(TraceSpec(module, (label_t,), kwargs, shapes, (), (semantics,)))
    onnx.save(model, tmp_path / "semantics.onnx")
    run = onnx_runner(tmp_path / "semantics.onnx")
    for label, instance in cases:
        expected = to_semantics(label, instance, cfg)
        feeds = {"label": label.astype(np.int32)[:, None]}
        if cfg.use_instance:
            feeds["instance"] = instance.astype(np.int32)[:, None]
        eager = module(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
        (in_onnx,) = run(feeds)
        assert np.array_equal(eager, expected) and np.array_equal(in_onnx, expected)


# ------------------------------------------------------------------------------ ONNX fp32 / fp16
def feeds_for(meta, count=4, seed=0):
    labels, instances = random_labels(meta.config, batch=count, seed=seed)
    return generator_feeds(meta, labels, instances, seed)


@pytest.mark.parametrize("preset, overrides", LAYOUTS)
def test_onnx_fp32_reproduces_eager(exported, preset, overrides):
    generator, path, meta = exported[(preset, bool(overrides))]
    report = verify_generator(onnx_runner(path), path.name, meta, generator, feeds_for(meta))
    print(report.summary())
    assert report.passed and report.max_abs <= 1e-4


@pytest.mark.parametrize("preset, overrides", LAYOUTS)
def test_onnx_uses_only_tensorrt_parser_ops_and_carries_metadata(exported, preset, overrides):
    _, path, meta = exported[(preset, bool(overrides))]
    model = onnx.load(path)
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{preset} {overrides}: opset {model.opset_import[0].version}, ops {ops}")
    assert not unsupported_ops(model)
    assert ArtifactMetadata.from_props({p.key: p.value for p in model.metadata_props}) == meta
    names = [i.name for i in model.graph.input]
    assert names == [t.name for t in meta.inputs]
    assert [i.type.tensor_type.elem_type for i in model.graph.input][0] == onnx.TensorProto.INT32


def test_the_op_gate_catches_an_unsupported_op():
    model = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("NonMaxSuppression", ["a", "b"], ["c"])], "g", [], []))
    assert unsupported_ops(model) == {"NonMaxSuppression"} and "Conv" in TRT_PARSER_OPS


@pytest.mark.parametrize("preset, overrides", LAYOUTS)
def test_fp16_reaches_the_psnr_target(exported, preset, overrides, tmp_path):
    generator, path, meta = exported[(preset, bool(overrides))]
    feeds = feeds_for(meta, seed=3)
    measure = PsnrProbe(path, feeds, tmp_path)

    model, report = convert_fp16(onnx.load(path), measure)
    onnx.save(model, tmp_path / "fp16.onnx")
    fp16 = dataclasses.replace(meta, precision="fp16")
    check = verify_generator(onnx_runner(tmp_path / "fp16.onnx"), "fp16.onnx", fp16, generator, feeds)
    print(f"{preset}: {report.notes[-1]}; vs eager: {check.summary()}")
    assert check.passed and check.psnr_db >= 40
    initializers = {i.name: i.data_type for i in model.graph.initializer}
    assert sum(t == onnx.TensorProto.FLOAT16 for t in initializers.values()) > len(initializers) // 2
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # IO keeps its types
    stats = [name for n in model.graph.node if n.op_type == "BatchNormalization" for name in n.input[1:]]
    assert stats and all(initializers[name] == onnx.TensorProto.FLOAT for name in stats if name in initializers)


@pytest.mark.parametrize("preset, overrides", [  # cityscapes' package: test_synthesizer, test_export_api
    pytest.param("cityscapes", {}, marks=pytest.mark.slow), ("coco", dict(use_vae=True)),
    pytest.param("ade20k", {}, marks=pytest.mark.slow), pytest.param("coco", {}, marks=pytest.mark.slow),
    pytest.param("cityscapes", dict(use_vae=True), marks=pytest.mark.slow),
])
def test_pt2_package_reproduces_eager(preset, overrides, tmp_path):
    cfg = tiny_config(preset, **overrides)
    generator = realistic_generator(cfg)
    meta = export_generator_pt2(generator, tmp_path / "g.pt2", Shapes(batch=(1, 2, 4)))
    assert meta.format == "pt2" and meta.device == "cpu"
    labels, instances = random_labels(cfg, batch=5)
    report = verify_generator(pt2_runner(tmp_path / "g.pt2", meta), "g.pt2", meta, generator,
                              generator_feeds(meta, labels, instances))
    print(report.summary())
    assert report.passed and report.max_abs <= 1e-4
    with pytest.raises(ValueError, match="fp16 .pt2 packages need CUDA"):
        export_generator_pt2(generator, tmp_path / "h.pt2", precision="fp16", device="cpu")


def test_dynamic_size_and_uint8_output(tmp_path):
    cfg = tiny_config("ade20k")
    generator = realistic_generator(cfg)
    meta = export_generator(generator, tmp_path / "d.onnx", Shapes(height=(64, 64, 192), width=(64, 128, 256)),
                            uint8_output=True)
    assert meta.dynamic_size and meta.outputs[0].dtype == "uint8"
    run = onnx_runner(tmp_path / "d.onnx")
    for h, w in [(64, 64), (192, 128), (128, 256)]:
        labels, _ = random_labels(tiny_config("ade20k", crop_size=max(h, w)), batch=2)
        feeds = {"label": labels[:, :h, :w].astype(np.int32)[:, None]}
        (image,) = run(feeds)
        assert image.shape == (2, h, w, 3) and image.dtype == np.uint8
        report = verify_generator(run, "d.onnx", meta, generator, feeds)
        assert report.passed and report.uint8_max_levels <= 1, report.summary()


def test_shape_range_errors():
    cfg = tiny_config("cityscapes")
    with pytest.raises(ValueError, match="multiples of its stride 64, at least 128"):
        Shapes(height=(100, 128, 256)).resolved(cfg)
    with pytest.raises(ValueError, match="min <= opt <= max"):
        Shapes(batch=(4, 1, 8)).resolved(cfg)
    with pytest.raises(ValueError, match="fixed latent grid"):
        Shapes(height=(128, 128, 256)).resolved(tiny_config("cityscapes", use_vae=True))


def test_encoder_export_uint8_any_size(tmp_path):
    cfg = tiny_config("coco", use_vae=True)
    torch.manual_seed(0)
    encoder = ConvEncoder(cfg).eval()
    meta = export_encoder(encoder, tmp_path / "e.onnx")
    styles = np.random.default_rng(0).integers(0, 256, (3, 300, 200, 3), dtype=np.uint8)
    report = verify_encoder(onnx_runner(tmp_path / "e.onnx"), "e.onnx", meta, encoder, styles)
    print(report.summary())
    assert report.passed and report.max_abs <= 1e-4
    with torch.no_grad():  # the graph's uint8 normalization is the reference's
        mu, _ = EncoderGraph(encoder)(torch.from_numpy(styles))
        ref_mu, _ = encoder(torch.from_numpy(styles).permute(0, 3, 1, 2).float() / 127.5 - 1)
    torch.testing.assert_close(mu, ref_mu, rtol=0, atol=1e-5)


def test_generator_graph_uint8_matches_numpy_convention():
    from gaugan_sdk.imaging import image_to_uint8

    cfg = tiny_config("ade20k")
    generator = realistic_generator(cfg)
    labels, _ = random_labels(cfg, batch=2)
    label = torch.from_numpy(labels.astype(np.int32))[:, None]
    with torch.no_grad():
        as_uint8 = GeneratorGraph(generator, uint8_output=True)(label).numpy()
        as_float = GeneratorGraph(generator)(label).numpy()
    assert np.array_equal(as_uint8, image_to_uint8(as_float))


# ------------------------------------------------------------------------------ calibration masks
def test_calibration_folder_reads_label_pngs_with_instance_partners(tmp_path):
    cfg = tiny_config("cityscapes")
    labels, instances = random_labels(cfg, batch=2)
    for i, (label, instance) in enumerate(zip(labels, instances)):
        Image.fromarray(label).save(tmp_path / f"city_{i}_gtFine_labelIds.png")
        Image.fromarray(instance.astype(np.uint16)).save(tmp_path / f"city_{i}_gtFine_instanceIds.png")  # 16-bit
    got_labels, got_instances, described = calibration_masks(cfg, cfg.image_size, 2, tmp_path)
    assert np.array_equal(got_labels, labels) and np.array_equal(got_instances, instances)
    assert "2 label maps" in described
    small, _, _ = calibration_masks(cfg, (32, 64), 2, tmp_path)  # resized, nearest
    assert small.shape == (2, 32, 64) and set(np.unique(small)) <= set(np.unique(labels))


def test_calibration_errors_name_the_file(tmp_path):
    cfg = tiny_config("cityscapes")
    with pytest.raises(ValueError, match="holds no label PNGs"):
        calibration_masks(cfg, cfg.image_size, 2, tmp_path)
    Image.fromarray(np.full((8, 8), 40, np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"bad.png: label id\(s\) out of range .*: 40 \(64 px\); accepted ids: 0..34"):
        calibration_masks(cfg, cfg.image_size, 2, tmp_path)
    (tmp_path / "bad.png").unlink()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match="colour.png is a RGB image"):
        calibration_masks(cfg, cfg.image_size, 2, tmp_path)
    with pytest.warns(UserWarning, match="procedural scenes"):
        labels, instances, _ = calibration_masks(cfg, cfg.image_size, 3, None)
    assert labels.shape == (3, *cfg.image_size) and instances.shape == labels.shape


# ------------------------------------------------------------------------------ the command
def test_cli_fp16_onnx_with_style_encoder(checkpoints, tmp_path, capsys):
    out = tmp_path / "engines"
    out.mkdir()
    code = export_main(["--checkpoint", str(checkpoints / "coco.pt"), "--engine", "fp16", "--format", "onnx",
                        "--output", str(out / "coco.onnx"), "--batch", "4", "--calib-count", "4",
                        "--triton-repo", str(tmp_path / "triton")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert sorted(p.name for p in out.iterdir()) == ["coco.onnx", "coco.onnx.json", "coco.onnx.verify.json",
                                                     "coco_encoder.onnx", "coco_encoder.onnx.json"]
    meta = read_sidecar(out / "coco.onnx")
    assert meta.precision == "fp16" and meta.encoder == "coco_encoder.onnx" and meta.batch == Range(1, 4, 4)
    assert meta.source["kind"] == "gaugan-sdk" and len(meta.source["sha256"]["checkpoint"]) == 64
    reports = json.loads((out / "coco.onnx.verify.json").read_text())
    assert [r["role"] for r in reports if "ONNX Runtime" in r["execution"]] == ["generator", "encoder"]
    assert all(r["passed"] for r in reports)  # the ONNX Runtime runs, and OpenVINO bf16 where this CPU has bf16
    assert reports[0]["psnr_db"] >= 40
    assert "[1] load checkpoint" in printed and "done in" in printed and "Synthesizer(" in printed
    assert sorted(p.name for p in (tmp_path / "triton").iterdir()) == ["coco", "coco_encoder", "coco_generator"]
    assert (tmp_path / "triton" / "coco_generator" / "1" / "model.onnx").read_bytes() == \
        (out / "coco.onnx").read_bytes()
    assert "tritonserver --model-repository=" in printed


def test_cli_int8_with_a_calibration_folder(checkpoints, tmp_path, capsys):
    cfg = tiny_config("cityscapes")
    calib = tmp_path / "calib"
    calib.mkdir()
    labels, _ = scene_batch(5, 6, *cfg.image_size, label_set_for(cfg))
    for i, label in enumerate(labels):
        Image.fromarray(label).save(calib / f"scene_{i}.png")
    argv = ["--checkpoint", str(checkpoints / "city.pt"), "--engine", "int8", "--format", "onnx", "--output",
            str(tmp_path / "city.onnx"), "--calib-dir", str(calib), "--calib-count", "6"]
    assert export_main(argv) == 0
    printed = capsys.readouterr().out
    assert "6 label maps from" in printed and "procedural" not in printed
    assert "int8 calibration on 6 masks: fewer than 16" in printed  # thin calibration is said at once
    assert re.search(r"the masks cover \d+ of 35 classes; missing: ", printed)
    assert "Q/DQ executed exactly" in printed  # verification names how the int8 graph ran
    report = json.loads((tmp_path / "city.onnx.verify.json").read_text())[0]
    assert report["passed"] and "disable_quant_qdq" in report["execution"] and report["min_psnr"] == 35.0
    assert read_sidecar(tmp_path / "city.onnx").precision == "int8"
    assert (tmp_path / "city.onnx.calib.json").is_file()
    assert export_main(argv) == 0  # a second export reuses the calibration
    assert "ranges from the cache" in capsys.readouterr().out


def test_cli_pt2_refuses_int8_and_cpu_fp16(checkpoints, tmp_path, capsys):
    cases = [("int8", "format 'pt2' takes precisions fp32, fp16, not 'int8'")]
    cases += [] if torch.cuda.is_available() else [("fp16", "need CUDA")]
    for engine, message in cases:
        code = export_main(["--checkpoint", str(checkpoints / "city.pt"), "--format", "pt2", "--engine", engine,
                            "--output", str(tmp_path / "m.pt2")])
        assert code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv_tail, message", [
    (["--preset", "ade20k"], "do not fit the config"),  # an NVlabs-format file of another model
    (["--preset", "cityscapes", "--set", "use_vae=true"], "style encoder .*latest_net_E.pth is needed"),
    (["--preset", "cityscapes", "--calib-dir", "EMPTY"], "holds no label PNGs"),
    (["--preset", "cityscapes", "--set", "colour=red"], "expected KEY=VALUE with KEY one of"),
    (["--preset", "cityscapes", "--min-shape", "1x64", "--opt-shape", "1x64x128", "--max-shape", "2x64x128"],
     "expected BxHxW"),
])
def test_cli_bad_input_is_a_clear_error_and_writes_nothing(checkpoints, tmp_path, capsys, argv_tail, message):
    nvlabs = tmp_path / "nvlabs"
    nvlabs.mkdir()
    state = torch.load(checkpoints / "city.pt", weights_only=True)["generator"]
    torch.save(state, nvlabs / "latest_net_G.pth")
    (tmp_path / "EMPTY").mkdir()
    out = tmp_path / "engines"
    out.mkdir()
    argv_tail = [str(tmp_path / "EMPTY") if a == "EMPTY" else a for a in argv_tail]
    code = export_main(["--checkpoint", str(nvlabs), "--format", "onnx", "--output", str(out / "m.onnx"),
                        "--set", "ngf=8", "--set", "spade_hidden=16", "--set", "crop_size=128", *argv_tail])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(message, err), err
    assert list(out.iterdir()) == []


def test_cli_never_replaces_a_triton_model_folder_it_did_not_write(checkpoints, tmp_path, capsys):
    """Issue 26, 1, as reported: a re-export into a repository deleted the user's version 2 and notes (rc 0)."""
    repo = tmp_path / "repo"
    (repo / "x_generator" / "2").mkdir(parents=True)
    (repo / "x_generator" / "2" / "model.onnx").write_text("v2")
    (repo / "x_generator" / "NOTES.txt").write_text("notes")
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    argv = ["--checkpoint", str(checkpoints / "city.pt"), "--format", "onnx", "--output", str(tmp_path / "x.onnx"),
            "--triton-repo", str(repo), "--calib-count", "2", "--quiet"]
    assert export_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gaugan-export: error: triton_repo: ") and "x_generator exists" in err
    assert err.count("\n") == 1  # one line
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "x.onnx").exists()  # refused before any work
    other = tmp_path / "repo2"  # its own earlier output, unchanged, is replaced by a re-export
    assert export_main([*argv[:-5], "--triton-repo", str(other), "--calib-count", "2", "--quiet"]) == 0
    assert export_main([*argv[:-5], "--triton-repo", str(other), "--calib-count", "2", "--quiet"]) == 0
    assert (other / "x_generator" / "1" / "model.onnx").read_bytes() == (tmp_path / "x.onnx").read_bytes()


def test_cli_unwritable_output_and_missing_tensorrt(checkpoints, tmp_path, capsys):
    code = export_main(["--checkpoint", str(checkpoints / "city.pt"), "--format", "onnx",
                        "--output", str(tmp_path / "missing" / "m.onnx")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = export_main(["--checkpoint", str(checkpoints / "city.pt"), "--format", "onnx",
                        "--output", str(tmp_path / "m.plan")])
    assert code == 2 and "must end in .onnx" in capsys.readouterr().err
    pytest.importorskip("importlib").util.find_spec("tensorrt") is None or pytest.skip("TensorRT is installed")
    code = export_main(["--checkpoint", str(checkpoints / "city.pt"), "--output", str(tmp_path / "m.plan")])
    err = capsys.readouterr().err
    assert code == 2 and "TensorRT is not installed" in err and "--format onnx" in err
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_leaves_only_its_report(checkpoints, tmp_path, capsys):
    code = export_main(["--checkpoint", str(checkpoints / "city.pt"), "--format", "onnx", "--output",
                        str(tmp_path / "m.onnx"), "--atol", "1e-12", "--calib-count", "2"])
    assert code == 2 and "verification failed" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx.verify.failed.json"]


def test_cli_unknown_preset_is_refused_by_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_main(["--checkpoint", "x", "--preset", "kitti"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'kitti'" in capsys.readouterr().err


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "export.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--engine" in result.stdout and "--calib-dir" in result.stdout


@pytest.mark.slow
def test_real_size_cityscapes_exports_to_onnx_fp32_and_fp16(tmp_path):
    """Random weights at the real geometry (93M parameters, 256x512); numbers printed for the notes."""
    cfg = GeneratorConfig.preset("cityscapes")
    generator = realistic_generator(cfg)
    meta = export_generator(generator, tmp_path / "city.onnx", Shapes(batch=(1, 1, 2)))
    labels, instances = scene_batch(0, 2, *cfg.image_size, label_set_for(cfg))
    feeds = generator_feeds(meta, labels, instances)
    fp32 = verify_generator(onnx_runner(tmp_path / "city.onnx"), "city.onnx", meta, generator, feeds)
    print(f"real size: {fp32.summary()}")
    assert fp32.passed and fp32.max_abs <= 1e-4
    measure = PsnrProbe(tmp_path / "city.onnx", feeds, tmp_path)

    model, report = convert_fp16(onnx.load(tmp_path / "city.onnx"), measure)
    onnx.save(model, tmp_path / "city16.onnx")
    fp16 = verify_generator(onnx_runner(tmp_path / "city16.onnx"), "city16.onnx",
                            dataclasses.replace(meta, precision="fp16"), generator, feeds)
    print(f"real size: {report.notes[-1]}; {fp16.summary()}")
    assert fp16.passed and fp16.psnr_db >= 40


def test_cli_conventions_default_format_default_folder_and_trtexec_shapes(checkpoints, tmp_path, capsys, monkeypatch):
    """No --format and no TensorRT: ONNX with a note; no --output: engines/ is created; trtexec's
    label:Bx1xHxW shapes are read; --quiet prints only the summary."""
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed: the default format is a plan")
    monkeypatch.chdir(tmp_path)
    code = export_main(["--checkpoint", str(checkpoints / "city.pt"), "--min-shape", "label:1x1x64x128",
                        "--opt-shape", "label:2x1x64x128,instance:2x1x64x128", "--max-shape", "label:3x1x64x128",
                        "--calib-count", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "note: no --format given and TensorRT is not installed here: exporting ONNX" in out
    meta = read_sidecar(tmp_path / "engines" / "city.onnx")
    assert meta.format == "onnx" and meta.batch.to_list() == [1, 2, 3]
    code = export_main(["--checkpoint", str(checkpoints / "city.pt"), "--format", "onnx", "--quiet",
                        "--output", "engines/q.onnx", "--calib-count", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "[1]" not in out and out.lstrip().startswith("wrote")


@pytest.mark.parametrize("text, expected", [("1x256x512", (1, 256, 512)), ("label:4x1x256x512", (4, 256, 512)),
                                            ("instance:2x1x8x8,label:2x1x64x128", (2, 64, 128))])
def test_shape_syntax_bxhxw_and_trtexecs(text, expected):
    from export.cli import _parse_shape

    assert _parse_shape(text) == expected


@pytest.mark.parametrize("text", ["label:1x3x256x512", "z:1x256", "1x256", "label:0x1x64x64", "²x2x2"])
def test_bad_shapes_name_both_syntaxes(text):
    from export.cli import _parse_shape

    with pytest.raises(ValueError, match=r"expected BxHxW .* or trtexec's label:Bx1xHxW"):
        _parse_shape(text)


def test_format_engine_is_a_tensorrt_plan_named_engine(checkpoints, tmp_path, monkeypatch):
    from gaugan_sdk.kinds import EXPORT_FORMATS, TENSORRT
    import export.tensorrt

    assert EXPORT_FORMATS["engine"] is TENSORRT and EXPORT_FORMATS["trt"] is TENSORRT
    monkeypatch.setattr(export.tensorrt, "tensorrt_available", lambda: True)  # the checks before any build
    with pytest.raises(ValueError, match=r"output .*m.onnx must end in .plan or .engine for format 'engine'"):
        export_checkpoint(checkpoints / "city.pt", format="engine", output=tmp_path / "m.onnx", verbose=False)
