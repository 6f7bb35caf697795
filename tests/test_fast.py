"""The fast graph (`gaugan_sdk.models.fast`): exact against the reference graph in eager PyTorch and ONNX
Runtime (tiny models here, full size under `slow`), both mask-conv forms, one mask for N styles through the
exported file and the runtime, its MACs counted from the ONNX, and what the metadata records."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import onnx
import pytest
import torch

from helpers import random_labels, tiny_config
from export.macs import onnx_macs
from export.to_onnx import export_generator, unsupported_ops
from export.verify import generator_feeds, onnx_runner, verify_generator
from gaugan_sdk import Synthesizer
from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.contract import REFERENCE, GraphVariant, Range, Shapes
from gaugan_sdk.imaging import image_to_uint8
from gaugan_sdk.kinds import ONNX, PT2, TENSORRT
from gaugan_sdk.metadata import SCHEMA_VERSION, ArtifactMetadata, read_sidecar, write_sidecar
from gaugan_sdk.models import GeneratorGraph
from gaugan_sdk.models.profile import generator_macs
from helpers import realistic_generator

LAYOUTS = [("cityscapes", {}), ("ade20k", {}), ("coco", {}), ("cityscapes", dict(use_vae=True)),
           ("coco", dict(use_vae=True))]
# other geometries and norms; crops large enough that the latent grid is not 1x1 (batch statistics of one
# pixel leave channels with zero variance, where the float32 reference itself is off by 0.3 from float64)
VARIANTS = [("ade20k", dict(param_free_norm="instance")), ("ade20k", dict(num_upsampling_layers="more",
                                                                          crop_size=128)),
            ("coco", dict(num_upsampling_layers="most", crop_size=256)), ("coco", dict(spectral_norm=False)),
            ("ade20k", dict(param_free_norm="batch", use_vae=True))]


def inputs(cfg, batch=2, seed=0):
    labels, instances = random_labels(cfg, batch=batch, seed=seed)
    label = torch.from_numpy(labels.astype(np.int32))[:, None]
    instance = torch.from_numpy(instances)[:, None] if cfg.use_instance else None
    z = torch.randn(batch, cfg.z_dim, generator=torch.Generator().manual_seed(seed)) if cfg.use_vae else None
    return label, instance, z


FAST = [GraphVariant("fast", m, f) for m in ("conv", "lookup") for f in (True, False)]


LIMITS: dict[tuple, float] = {}  # tolerance per layout of the eager test (deterministic weights and inputs)


def tolerance(generator, label, instance, z) -> float:
    """How far two exact restructurings may differ in float32: 1e-5, or twice the reference graph's own float32
    error against float64 where the model amplifies rounding more (it depends on the CPU's kernels: AVX2-only
    machines round differently from AVX-512 ones)."""
    with torch.no_grad():
        exact = copy.deepcopy(GeneratorGraph(generator)).double()(label, instance, None if z is None else z.double())
        rounding = float((GeneratorGraph(generator)(label, instance, z).double() - exact).abs().max())
    return max(1e-5, 2 * rounding)


@pytest.mark.parametrize("variant", FAST, ids=lambda v: v.label)
@pytest.mark.parametrize("preset, overrides", LAYOUTS + VARIANTS)
def test_fast_graph_equals_the_reference_in_eager(preset, overrides, variant):
    cfg = tiny_config(preset, **overrides)
    generator = realistic_generator(cfg)
    label, instance, z = inputs(cfg)
    with torch.no_grad():
        reference = GeneratorGraph(generator)(label, instance, z)
        fast = GeneratorGraph(generator, variant=variant)(label, instance, z)
    assert reference.abs().max() > 0.05 and reference.std() > 0.02  # an informative image
    key = (preset, tuple(sorted(overrides.items())))  # one float64 run per layout, not per variant
    limit = LIMITS[key] if key in LIMITS else LIMITS.setdefault(key, tolerance(generator, label, instance, z))
    assert (fast - reference).abs().max() <= limit, (float((fast - reference).abs().max()), limit)


@pytest.mark.parametrize("preset, overrides", [LAYOUTS[0], LAYOUTS[3], VARIANTS[0]])  # instances, VAE, IN
def test_graphs_run_on_the_inputs_device_without_host_reads(preset, overrides):
    """On the meta device, the stand-in for CUDA here: a tensor made on a fixed device inside forward, or a value
    read back to the host (`.item()`, `.cpu()`: a sync, and an error under CUDA-graph capture), raises."""
    from gaugan_sdk.models.generator import SPADEGenerator

    cfg = tiny_config(preset, **overrides)
    generator = SPADEGenerator(cfg).eval()  # the values do not matter on meta: no batch-norm estimation
    label, instance, z = (None if t is None else t.to("meta") for t in inputs(cfg))
    for variant in [REFERENCE, *FAST]:
        graph = copy.deepcopy(GeneratorGraph(generator, variant=variant)).to("meta")
        with torch.no_grad():
            out = graph(label, instance, z)
        assert out.device.type == "meta" and out.shape == (2, 3, *cfg.image_size), variant


def export_variants(generator, folder, reference=None) -> dict:
    """The reference and three fast variants (both mask convs fused, the conv one unfused) of a tiny generator as
    ONNX: {label: (path, meta)}; `reference`: an export of that generator's reference graph already made."""
    out = {"reference": reference} if reference else {}
    for variant in ([] if reference else [REFERENCE]) + FAST[:3]:
        path = folder / f"{variant.label.replace(':', '_').replace('+', '_')}.onnx"
        out[variant.label] = path, export_generator(generator, path, Shapes(Range(1, 2, 4)), variant=variant)
    return out


@pytest.fixture(scope="module")
def cityscapes_variants(tmp_path_factory, exported):
    """A tiny Cityscapes generator (instance edges) as the reference (the session's export, conftest) and the
    fast graphs, exported once."""
    generator, path, meta = exported[("cityscapes", False)]
    return generator, export_variants(generator, tmp_path_factory.mktemp("variants"), (path, meta))


def test_fast_graph_has_no_normalization_op_and_one_mask_conv_per_block(cityscapes_variants):
    _, files = cityscapes_variants
    ops = {}
    for label in ("reference", "fast:conv+fused", "fast:conv"):
        model = onnx.load(files[label][0])
        ops[label] = [n.op_type for n in model.graph.node]
        assert not unsupported_ops(model)
    assert "BatchNormalization" in ops["reference"]
    assert not any("BatchNormalization" in o for label, o in ops.items() if label != "reference")
    # reference: stem + 18 SPADEs x (shared, gamma, beta) + 7 blocks x 2 convs + 4 shortcuts + conv_img = 74;
    # fused: the same main path, one shared conv per block and one gamma|beta conv per SPADE: 45; one each: 74
    assert [ops[v].count("Conv") for v in ("reference", "fast:conv+fused", "fast:conv")] == [74, 45, 74]
    splits = {v: ops[v].count("Split") + ops[v].count("Slice") for v in ("reference", "fast:conv+fused", "fast:conv")}
    assert splits["fast:conv"] == splits["reference"] < splits["fast:conv+fused"]  # one each: nothing to split


def check_fast_onnx(generator, files):
    """Every fast file = the reference file in ONNX Runtime, each verified against eager; MACs from the files."""
    cfg = generator.cfg
    label, instance, z = inputs(cfg)
    macs, outputs = {}, {}
    for variant_label, (path, meta) in files.items():
        assert meta.variant.label == variant_label
        feeds = {k: v.numpy() for k, v in zip(meta.input_names, (t for t in (label, instance, z) if t is not None))}
        report = verify_generator(onnx_runner(path), path.name, meta, generator, feeds)  # vs eager reference
        assert report.passed, report.summary()
        assert report.samples == len(label) + (2 if meta.broadcasts_label else 0)  # + one mask, two styles
        outputs[variant_label] = onnx_runner(path)(feeds)[0]
        macs[variant_label] = onnx_macs(path, {k: (1, *v.shape[1:]) for k, v in feeds.items()})["total"]
    limit = tolerance(generator, label, instance, z)
    for variant in FAST[:3]:  # like for like: ONNX Runtime runs both graphs
        assert np.abs(outputs[variant.label] - outputs["reference"]).max() <= limit
    counted = generator_macs(cfg)
    assert macs["reference"] == counted.total  # the file's count = the module's count
    assert macs["fast:conv+fused"] == macs["fast:conv"] == counted.total  # the same convs, fused or not
    shared = counted.total_where(lambda name: ".mlp_shared" in name)
    edges = shared // cfg.semantic_nc if cfg.use_instance else 0  # the lookup keeps a 1-channel edge conv
    assert macs["fast:lookup+fused"] == counted.total - shared + edges


def test_fast_onnx_equals_the_reference_onnx_and_its_macs_are_counted_from_the_file(cityscapes_variants):
    generator, files = cityscapes_variants
    check_fast_onnx(generator, files)


@pytest.mark.slow
@pytest.mark.parametrize("preset, overrides", [LAYOUTS[1], LAYOUTS[4]])  # dontcare, VAE
def test_fast_onnx_of_the_other_layouts(preset, overrides, tmp_path):
    generator = realistic_generator(tiny_config(preset, **overrides))
    check_fast_onnx(generator, export_variants(generator, tmp_path))


def test_one_mask_many_styles_through_the_file_and_the_runtime(tmp_path, monkeypatch):
    cfg = tiny_config("coco", use_vae=True)
    generator = realistic_generator(cfg)
    for name, variant in (("fast", FAST[0]), ("reference", REFERENCE)):
        path = tmp_path / f"{name}.onnx"
        write_sidecar(path, export_generator(generator, path, Shapes(Range(1, 2, 4)), variant=variant))
    fast, reference = read_sidecar(tmp_path / "fast.onnx"), read_sidecar(tmp_path / "reference.onnx")
    assert fast.broadcasts_label and not reference.broadcasts_label
    assert fast.inputs[0].shape[0] == "label_batch" and fast.inputs[-1].shape[0] == "batch"
    labels, _ = random_labels(cfg, batch=1)
    calls = []
    with Synthesizer(tmp_path / "fast.onnx") as syn, Synthesizer(tmp_path / "reference.onnx") as ref:
        original = syn.generator.run

        def spy(feeds, device_output=False):
            calls.append({k: v.shape for k, v in feeds.items()})
            return original(feeds, device_output)

        monkeypatch.setattr(syn.generator, "run", spy)
        many = syn.run(labels[0], seed=[1, 2, 3, 4, 5])  # one mask, 5 styles: batches of 4 + 1
        assert many.shape == (5, *cfg.image_size, 3)
        assert [c["label"][0] for c in calls] == [1, 1] and [c["z"][0] for c in calls] == [4, 1]
        expected = ref.run(np.repeat(labels, 5, axis=0), seed=[1, 2, 3, 4, 5])
        assert np.abs(many.astype(int) - expected.astype(int)).max() <= 1
        assert syn.run(labels[0], seed=[9]).shape == (*cfg.image_size, 3)  # one map, one seed: one image
        with pytest.raises(ValueError, match="2 style images and 3 seeds for one label map"):
            syn.run(labels[0], style=np.zeros((2, 32, 32, 3), np.uint8), seed=[1, 2, 3])


def test_metadata_records_the_graph_and_reads_older_files(cityscapes_variants):
    _, files = cityscapes_variants
    _, meta = files["fast:lookup+fused"]
    assert meta.variant == GraphVariant("fast", "lookup", True) and meta.variant.label == "fast:lookup+fused"
    data = json.loads(meta.to_json())
    assert data["schema_version"] == SCHEMA_VERSION and data["variant"]["graph"] == "fast"
    three = {k: v for k, v in data.items() if k != "variant"} | {"schema_version": 3, "graph": "fast",
                                                                 "mask_conv": "lookup", "fused": True}
    assert ArtifactMetadata.from_dict(three).variant == meta.variant  # schema 3: three top-level keys
    old = {k: v for k, v in data.items() if k != "variant"} | {"schema_version": 1}
    legacy = ArtifactMetadata.from_dict(old)  # written before the graph was recorded: a reference graph
    assert legacy.variant == REFERENCE
    with pytest.raises(ValueError, match="graph='quick'; accepted: reference, fast, sparse"):
        ArtifactMetadata.from_dict({**data, "variant": {**data["variant"], "graph": "quick"}})


def test_fast_variant_by_target():
    city, ade = GeneratorConfig.preset("cityscapes"), GeneratorConfig.preset("ade20k")
    by_kind = {kind.name: GraphVariant.for_target("fast", ade, kind.device_for("cpu")).label
               for kind in (ONNX, PT2, TENSORRT)}
    assert by_kind == {"onnx": "fast:lookup", "pt2": "fast:lookup", "tensorrt": "fast:conv+fused"}
    assert GraphVariant.for_target("fast", city, "cpu").label == "fast:conv"  # CPU: one conv each, few labels
    assert GraphVariant.for_target("fast", ade, PT2.device_for("cuda")).label == "fast:conv+fused"
    assert GraphVariant.for_target("fast", ade, "cpu", mask_conv="conv", fused=True).label == "fast:conv+fused"
    assert [GraphVariant.parse(v.label) for v in FAST] == FAST and GraphVariant.parse("reference") == REFERENCE
    with pytest.raises(ValueError, match=re.escape("graph variant 'fast:lookup+split'; accepted")):
        GraphVariant.parse("fast:lookup+split")


# ------------------------------------------------------------------------------ full size
@pytest.mark.slow
@pytest.mark.parametrize("preset, overrides", LAYOUTS[:4])
def test_full_size_fast_graph_is_exact(preset, overrides):
    """Random weights with recalibrated batch norm at the real geometry: fast (both mask convs) vs reference in
    eager fp32, max |diff| <= 1e-5 (or twice the reference's own float32 error) and uint8 within 1 level on
    >= 99.99% of pixels."""
    cfg = GeneratorConfig.preset(preset, **overrides)
    generator = realistic_generator(cfg)
    label, instance, z = inputs(cfg, batch=1, seed=3)
    limit = tolerance(generator, label, instance, z)
    with torch.no_grad():
        reference = GeneratorGraph(generator)(label, instance, z)
        for variant in FAST:
            fast = GeneratorGraph(generator, variant=variant)(label, instance, z)
            diff = float((fast - reference).abs().max())
            levels = np.abs(image_to_uint8(fast.numpy()).astype(int) - image_to_uint8(reference.numpy()).astype(int))
            print(f"{preset} {overrides} {variant.label}: max |diff| {diff:.2e}, uint8 within 1 level "
                  f"{100 * (levels <= 1).mean():.4f}%")
            assert diff <= limit and (levels <= 1).mean() >= 0.9999


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cityscapes", "ade20k", "coco"])
def test_full_size_fast_onnx_is_exact(preset, tmp_path):
    cfg = GeneratorConfig.preset(preset)
    generator = realistic_generator(cfg)
    label, instance, _ = inputs(cfg, batch=1, seed=5)
    out = {}
    for variant in (REFERENCE, *FAST):
        meta = export_generator(generator, tmp_path / "g.onnx", Shapes(Range(1, 1, 2)), variant=variant)
        feeds = generator_feeds(meta, label.numpy()[:, 0], None if instance is None else instance.numpy()[:, 0])
        out[variant.label] = onnx_runner(tmp_path / "g.onnx")(feeds)[0]
    limit = tolerance(generator, label, instance, None)
    for variant in FAST:
        fast, reference = out[variant.label], out["reference"]
        levels = np.abs(image_to_uint8(fast).astype(int) - image_to_uint8(reference).astype(int))
        print(f"{preset} {variant.label} vs reference, both ONNX Runtime: max |diff| "
              f"{np.abs(fast - reference).max():.2e}, uint8 within 1 level {100 * (levels <= 1).mean():.4f}%")
        assert np.abs(fast - reference).max() <= limit and (levels <= 1).mean() >= 0.9999
