"""Triton model repositories: every config.pbtxt parses with Triton's own ModelConfig protobuf (strict: an
unknown field or a wrong type is an error), and says what the artifact needs."""

from __future__ import annotations

import dataclasses

import pytest

from helpers import tiny_config
from export.triton import check_repository, ensemble_config, model_config, write_repository
from gaugan_sdk.contract import STYLE_SIZE, GraphVariant, Range, Shapes, encoder_io, generator_io
from gaugan_sdk.metadata import ArtifactMetadata

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="tritonclient (Triton's ModelConfig protobuf) is not installed")
text_format = pytest.importorskip("google.protobuf.text_format")


def parse(text: str):
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def metas(fmt: str = "onnx"):
    cfg = tiny_config("coco", use_vae=True)
    shapes = Shapes(Range(1, 4, 8)).resolved(cfg)
    generator = ArtifactMetadata.for_graph("generator", fmt, "fp16", cfg, generator_io(cfg, shapes), shapes,
                                           encoder="m_encoder.onnx")
    encoder = ArtifactMetadata.for_graph("encoder", fmt, "fp16", cfg, encoder_io(cfg.z_dim, Range(1, 1, 8)),
                                         Shapes(Range(1, 1, 8), STYLE_SIZE, STYLE_SIZE))
    return generator, encoder


@pytest.mark.parametrize("fmt, platform", [("onnx", "onnxruntime_onnx"), ("tensorrt", "tensorrt_plan")])
def test_model_config_parses_with_tritons_protobuf(fmt, platform):
    generator, _ = metas(fmt)
    config = parse(model_config("m_generator", generator, instances=2, device="gpu"))
    assert config.platform == platform and config.max_batch_size == 8
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("label", model_config_pb2.TYPE_INT32, [1, 64, 64]), ("instance", model_config_pb2.TYPE_INT32, [1, 64, 64]),
        ("z", model_config_pb2.TYPE_FP32, [256])]
    assert list(config.output[0].dims) == [3, 64, 64]
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.instance_group[0].count == 2 and config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


def test_dynamic_dims_become_minus_one_and_a_fixed_batch_has_no_batcher():
    _, encoder = metas()
    config = parse(model_config("m_encoder", encoder))
    assert list(config.input[0].dims) == [-1, -1, 3] and config.input[0].data_type == model_config_pb2.TYPE_UINT8
    single = dataclasses.replace(metas()[0], batch=(1, 1, 1))
    assert not parse(model_config("m", single)).HasField("dynamic_batching")


def test_ensemble_maps_the_style_mean_onto_z():
    generator, encoder = metas()
    config = parse(ensemble_config("m", generator, encoder, "m_generator", "m_encoder"))
    assert config.platform == "ensemble"
    assert [i.name for i in config.input] == ["label", "instance", "style"]
    first, second = config.ensemble_scheduling.step
    assert first.model_name == "m_encoder" and dict(first.output_map) == {"mu": "z"}
    assert second.model_name == "m_generator" and dict(second.input_map)["z"] == "z"


def test_repository_layout_and_refusal_of_pt2(tmp_path):
    generator, encoder = metas()
    (tmp_path / "g.onnx").write_bytes(b"onnx"), (tmp_path / "e.onnx").write_bytes(b"onnx")
    folders = write_repository(tmp_path / "repo", "m", [(tmp_path / "g.onnx", generator), (tmp_path / "e.onnx", encoder)])
    assert [f.name for f in folders] == ["m_generator", "m_encoder", "m"]
    for name, file in (("m_generator", "model.onnx"), ("m_encoder", "model.onnx")):
        assert (tmp_path / "repo" / name / "1" / file).read_bytes() == b"onnx"
        parse((tmp_path / "repo" / name / "config.pbtxt").read_text())
    assert (tmp_path / "repo" / "m" / "1").is_dir()
    with pytest.raises(ValueError, match="Triton serves onnx and trt artifacts, not 'pt2'"):
        model_config("m", dataclasses.replace(generator, format="pt2"))


def test_a_repository_folder_is_replaced_only_where_gaugan_export_wrote_it_unchanged(tmp_path):
    """Issue 26, 1: a re-export deleted <model>/2/model.onnx and NOTES.txt the user kept there."""
    generator, encoder = metas()
    (tmp_path / "g.onnx").write_bytes(b"onnx"), (tmp_path / "e.onnx").write_bytes(b"onnx")
    repo = tmp_path / "repo"
    write_repository(repo, "m", [(tmp_path / "g.onnx", generator), (tmp_path / "e.onnx", encoder)])
    check_repository(repo, "m")  # its own output, unchanged: a re-export may replace it
    (repo / "m_generator" / "2").mkdir()
    (repo / "m_generator" / "2" / "model.onnx").write_text("v2")
    (repo / "m_generator" / "NOTES.txt").write_text("notes")
    with pytest.raises(ValueError, match=r"m_generator exists and holds what gaugan-export did not write .*"
                                         r"\(2/, 2/model.onnx, NOTES.txt\); it is left as it is"):
        check_repository(repo, "m")
    (repo / "x_generator").mkdir()  # a folder of the user's with one of this export's names, never ours
    (repo / "x_generator" / "config.pbtxt").write_text("mine")
    with pytest.raises(ValueError, match=r"x_generator exists .* \(config.pbtxt\)"):
        check_repository(repo, "x")
    import shutil

    shutil.rmtree(repo / "m_generator" / "2")
    (repo / "m_generator" / "NOTES.txt").unlink()
    (repo / "m_encoder" / "config.pbtxt").write_text("edited")  # changed since: the user's now
    with pytest.raises(ValueError, match=r"m_encoder exists .* \(config.pbtxt\)"):
        check_repository(repo, "m")
    with pytest.raises(ValueError, match="is a file; give a folder"):
        check_repository(tmp_path / "g.onnx", "m")


def test_instance_kind_follows_the_artifact_and_the_device_asked():
    kinds = model_config_pb2.ModelInstanceGroup
    onnx, plan = metas("onnx")[0], metas("tensorrt")[0]
    assert parse(model_config("m", onnx)).instance_group[0].kind == kinds.KIND_AUTO  # a CPU Triton serves it too
    assert parse(model_config("m", onnx, device="cpu")).instance_group[0].kind == kinds.KIND_CPU
    assert parse(model_config("m", onnx, device="gpu")).instance_group[0].kind == kinds.KIND_GPU
    assert parse(model_config("m", plan)).instance_group[0].kind == kinds.KIND_GPU
    with pytest.raises(ValueError, match="tensorrt artifacts of the reference graph run on cuda only; accepted: "
                                         "auto, gpu"):
        model_config("m", plan, device="cpu")
    sparse = dataclasses.replace(onnx, variant=GraphVariant("sparse"))  # the CPU only, whatever was asked
    assert parse(model_config("m", sparse)).instance_group[0].kind == kinds.KIND_CPU
    with pytest.raises(ValueError, match="triton device 'tpu'; accepted: auto, gpu, cpu"):
        model_config("m", onnx, device="tpu")
