"""The boundary-sparse graph (`gaugan_sdk.models.sparse`): its band against a per-pixel definition, the same image
as the dense fast graph in eager PyTorch (every block forced sparse, every mask kind, tiny models) and in ONNX
Runtime (the exported If taking both branches), the export's refusals, and the runtime and the samples running a
sparse artifact on the CPU. Full size: `-m slow` (cityscapes, ade20k, coco on every mask kind)."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from helpers import tiny_config
from export import export_checkpoint
from export.sparse_benchmark import band_report
from export.to_onnx import export_generator
from export.verify import generator_feeds, onnx_runner
from gaugan_sdk import Synthesizer
from gaugan_sdk.checkpoint import save_checkpoint
from gaugan_sdk.config import GeneratorConfig
from gaugan_sdk.contract import DENSE_ABOVE, GraphVariant, Range, Shapes
from gaugan_sdk.imaging import image_to_uint8
from gaugan_sdk.labels import label_set_for
from gaugan_sdk.models import GeneratorGraph, random_generator
from gaugan_sdk.models.sparse import band_masks
from gaugan_sdk.procedural import MASK_KINDS, mask_batch
from helpers import realistic_generator
from helpers import ROOT, load_sample

LAYOUTS = [("cityscapes", {}), ("ade20k", dict(param_free_norm="instance")), ("coco", dict(use_vae=True)),
           ("ade20k", dict(num_upsampling_layers="more", crop_size=128))]


def mask_arrays(cfg, kind: str, batch: int = 2, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Maps of one kind (`procedural.MASK_KINDS`), with a dontcare patch where the model has that channel."""
    labels, instances = mask_batch(kind, seed, batch, *cfg.image_size, label_set_for(cfg))
    if cfg.contain_dontcare_label and kind != "one-class":
        labels[:, :3, :5] = 255
    return labels, instances


def masks(cfg, kind: str, batch: int = 2, seed: int = 5):
    labels, instances = mask_arrays(cfg, kind, batch, seed)
    label = torch.from_numpy(labels.astype(np.int32))[:, None]
    instance = torch.from_numpy(instances)[:, None] if cfg.use_instance else None
    return label, instance


def brute_force_band(ids: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: its 3x3 window non-uniform (two classes, an edge, or outside the image), and the band (a
    non-uniform pixel in its 3x3 window)."""
    h, w = ids.shape
    mixed = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            window = [(y + dy, x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            inside = all(0 <= a < h and 0 <= b < w for a, b in window)
            mixed[y, x] = not inside or len({ids[a, b] for a, b in window}) > 1 or any(edges[a, b] for a, b in window)
    band = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            band[y, x] = mixed[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2].any()
    return mixed, band


def test_band_masks_match_the_per_pixel_definition():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 3, (2, 9, 12)).repeat(2, axis=1).repeat(2, axis=2)  # 2x2 blocks: some uniform windows
    ids[1, 4:14, 6:20] = 1  # a large region: interior pixels
    edges = np.zeros_like(ids, dtype=np.float32)
    edges[1, 8, 10] = 1  # an instance edge inside it
    mixed, band = band_masks(torch.from_numpy(ids)[:, None], torch.from_numpy(edges)[:, None])
    for n in range(2):
        want_mixed, want_band = brute_force_band(ids[n], edges[n])
        assert (mixed[n, 0].numpy() == want_mixed).all() and (band[n, 0].numpy() == want_band).all()
    assert 0 < band[1].float().mean() < 1  # the test has interior pixels


@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("preset, overrides", LAYOUTS)
def test_sparse_graph_computes_the_dense_image_in_eager(preset, overrides, kind):
    """Every block forced sparse (dense_above=1; noise maps: all band), against the dense fast graph in float64:
    no further from it than the dense graph's own float32 rounding."""
    cfg = tiny_config(preset, **overrides)
    generator = realistic_generator(cfg)
    label, instance = masks(cfg, kind)
    z = torch.randn(3, cfg.z_dim, generator=torch.Generator().manual_seed(0)) if cfg.use_vae else None
    if z is not None:
        label, instance = label[:1], None if instance is None else instance[:1]  # one mask, three styles
    dense = GeneratorGraph(generator, variant=GraphVariant("fast", "conv", False)).eval()
    exact = copy.deepcopy(dense).double()
    with torch.no_grad():
        forced = GraphVariant("sparse", "conv", False, dense_above=1.0)
        sparse_out = GeneratorGraph(generator, variant=forced).eval()(label, instance, z)
        want = exact(label, instance, None if z is None else z.double()).double()
        rounding = float((dense(label, instance, z) - want).abs().max())
    assert sparse_out.shape == want.shape
    error = float((sparse_out.double() - want).abs().max())
    assert error <= 1.5 * rounding + 1e-6, (error, rounding)


def test_sparse_tables_are_what_the_dense_branch_computes_inside_regions():
    """One class everywhere: at the finest level only the border band is computed; the interior is table values,
    and the block's maps equal the dense maps there."""
    cfg = tiny_config("ade20k")
    generator = realistic_generator(cfg)
    forced = GraphVariant("sparse", "lookup", False, dense_above=1.0)
    block = GeneratorGraph(generator, variant=forced).generator.blocks[-1]
    ids = torch.full((1, 1, 16, 16), 7, dtype=torch.int64)
    mixed, band = band_masks(ids, None)
    assert int(band.sum()) == 16 * 16 - 12 * 12  # two pixels from the border
    with torch.no_grad():
        dense, computed = block.maps(ids), block.sparse.maps(ids, mixed, band)
    for a, b in zip(dense, computed):
        assert (a - b).abs().max() <= 1e-5


@pytest.fixture(scope="module")
def sparse_exports(tmp_path_factory):
    """A tiny Cityscapes generator (instance edges) exported as the sparse and the dense fast graph through
    gaugan-export's API (verified against eager), with the default threshold: at this size the finest levels of
    procedural scenes and one-class maps run sparse, the coarser ones dense (dontcare: the eager tests, coco)."""
    folder = tmp_path_factory.mktemp("sparse")
    cfg = tiny_config("cityscapes")
    generator = realistic_generator(cfg)
    save_checkpoint(folder / "city.pt", cfg, generator)
    common = dict(format="onnx", batch=(1, 1, 2), calib_count=2, verbose=False)
    sparse_result = export_checkpoint(folder / "city.pt", output=folder / "city_sparse.onnx", graph="sparse", **common)
    dense_result = export_checkpoint(folder / "city.pt", output=folder / "city_dense.onnx", graph="fast",
                                     mask_conv=sparse_result.metadata[0].variant.mask_conv, fused=False, **common)
    return cfg, generator, sparse_result, dense_result


def test_the_exported_sparse_graph_equals_the_dense_one_in_onnx_runtime(sparse_exports):
    cfg, generator, sparse_result, dense_result = sparse_exports
    meta = sparse_result.metadata[0]
    assert meta.variant == GraphVariant("sparse", meta.variant.mask_conv, False, dense_above=DENSE_ABOVE)
    assert sparse_result.verification[0].passed
    model = onnx.load(sparse_result.output)
    assert [n.op_type for n in model.graph.node].count("If") == 7  # one per residual block
    branch_ops = {n.op_type for node in model.graph.node if node.op_type == "If"
                  for attr in node.attribute for n in attr.g.node}
    assert {"NonZero", "MatMul", "ScatterND", "Gather", "Conv"} <= branch_ops
    sparse_run, dense_run = onnx_runner(sparse_result.output), onnx_runner(dense_result.output)
    module = GeneratorGraph(generator, variant=meta.variant).eval()
    taken = {kind: [b["sparse"] for b in band_report(module.generator, generator_feeds(meta, *mask_arrays(cfg, kind)))]
             for kind in MASK_KINDS}
    assert any(taken["scenes"]) and not all(taken["scenes"]) and any(taken["one-class"])  # both branches run
    assert not any(taken["noise"])
    dense_module = GeneratorGraph(generator, variant=dense_result.metadata[0].variant).eval()
    for kind in MASK_KINDS:  # scenes and one-class: sparse and dense blocks; noise, blocky: dense blocks
        feeds = generator_feeds(meta, *mask_arrays(cfg, kind))
        out, dense = sparse_run(feeds)[0], dense_run(feeds)[0]
        with torch.no_grad():
            inputs = [torch.from_numpy(v) for v in feeds.values()]
            eager, eager_dense = module(*inputs).numpy(), dense_module(*inputs).numpy()
        assert np.abs(out - dense).max() <= 2e-5, kind
        # against eager: no further than the dense graph's ONNX Runtime is from its eager run (float32 rounding)
        assert np.abs(out - eager).max() <= 1.5 * np.abs(dense - eager_dense).max() + 1e-6, kind
        assert (np.abs(image_to_uint8(out).astype(int) - image_to_uint8(dense).astype(int)) <= 1).all()


def test_a_sparse_artifact_runs_on_the_cpu_in_the_runtime_and_the_samples(sparse_exports, tmp_path):
    cfg, _, sparse_result, dense_result = sparse_exports
    syn = Synthesizer(sparse_result.output)
    assert syn.generator.device == "cpu"  # where this CPU's plan runs sparse graphs (ONNX Runtime or OpenVINO)
    # float32 on one runtime: the sparse image is the dense one (the plan may pick bf16 for auto, which is not)
    exact = Synthesizer(sparse_result.output, backend="onnxruntime")
    dense = Synthesizer(dense_result.output, backend="onnxruntime")
    assert exact.generator.providers == ["CPUExecutionProvider"]
    (label,), (instance,) = mask_arrays(cfg, "scenes", batch=1)
    assert np.abs(exact.run(label, instance).astype(int) - dense.run(label, instance).astype(int)).max() <= 1
    assert syn.run(label, instance).shape == exact.run(label, instance).shape
    for request in (dict(device="cuda"), dict(providers=["CUDAExecutionProvider", "CPUExecutionProvider"])):
        with pytest.raises(ValueError, match=r"sparse graph, which runs on the CPU.*--graph fast"):
            Synthesizer(sparse_result.output, **request)
    copy = tmp_path / "no_sidecar.onnx"  # the graph read from the file's own metadata
    copy.write_bytes(sparse_result.output.read_bytes())
    assert Synthesizer(copy, backend="onnxruntime").generator.providers == ["CPUExecutionProvider"]
    assert Synthesizer(copy).generator.device == "cpu"
    # the samples take the artifact as it is: the video script and the paint demo's model run it on the CPU
    video_stream = load_sample("video_stream", ROOT / "samples" / "video_stream.py")
    folder = tmp_path / "frames"
    folder.mkdir()
    labels, _ = mask_arrays(cfg, "scenes", batch=2)
    for i, frame in enumerate(labels):
        Image.fromarray(frame).save(folder / f"{i:04d}.png")
    stats = video_stream.main([str(sparse_result.output), "--input", str(folder), "--output",
                               str(tmp_path / "out.mp4"), "--no-overlay"])
    assert stats["frames"] == 2
    paint_server = load_sample("paint_server", ROOT / "samples" / "paint" / "server.py")
    app = paint_server.PaintApp(Synthesizer(sparse_result.output))
    assert app.syn.generator.device == "cpu" and app.model_info()["backend"] == app.syn.backend


def test_a_sparse_file_opened_on_a_gpu_provider_is_reopened_on_the_cpu(sparse_exports, tmp_path, monkeypatch):
    """No sidecar: the session opens on the best provider before the file's metadata says the graph is sparse;
    where that was a GPU one, the runtime reopens it on the CPU provider."""
    import gaugan_sdk.backends.onnxruntime as ort_backend

    opened = []

    class OnAGpu(ort_backend.OnnxRuntimeBackend):  # as if a GPU provider were installed and chosen by default
        def __init__(self, path, providers=None, *args, **kwargs):
            super().__init__(path, ["CPUExecutionProvider"], *args, **kwargs)
            opened.append(providers)
            if providers is None:
                self.device = "cuda"

    monkeypatch.setattr(ort_backend, "OnnxRuntimeBackend", OnAGpu)
    copy = tmp_path / "no_sidecar.onnx"
    copy.write_bytes(sparse_exports[2].output.read_bytes())
    Synthesizer(copy, backend="onnxruntime")
    assert opened == [None, ["CPUExecutionProvider"]]


@pytest.mark.parametrize("fmt, precision", [("trt", "fp32"), ("pt2", "fp32"), ("onnx", "fp16"), ("onnx", "int8")])
def test_export_refuses_the_sparse_graph_outside_fp32_onnx(tmp_path, fmt, precision):
    with pytest.raises(ValueError, match="graph='sparse' is exported as format onnx, openvino in precision fp32, "
                                         "on cpu.*"
                                         "graph='fast'"):
        export_checkpoint(tmp_path / "missing.pt", format=fmt, precision=precision, graph="sparse",
                          output=tmp_path / f"g.{ {'trt': 'plan', 'pt2': 'pt2'}.get(fmt, 'onnx') }", verbose=False)


def test_export_of_the_sparse_graph_refuses_early_with_what_is_accepted(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(ValueError, match=r"triton_device='gpu': onnx artifacts of the sparse graph run on cpu "
                                         r"only; accepted: auto, cpu"):
        export_checkpoint(missing, graph="sparse", triton_repo=tmp_path / "repo", triton_device="gpu", verbose=False)
    # no --format: a plan's suffix names TensorRT, which does not take the sparse graph
    with pytest.raises(ValueError, match=r"graph='sparse' is exported as format onnx.*got format 'trt'"):
        export_checkpoint(missing, graph="sparse", output=tmp_path / "g.plan", verbose=False)
    cfg = tiny_config("cityscapes", spade_kernel_size=5)
    with pytest.raises(ValueError, match="SPADE kernels of 3.*spade_kernel_size is 5: export the fast graph"):
        GeneratorGraph(realistic_generator(cfg), variant=GraphVariant("sparse", "conv", False))


def test_mask_kinds_take_any_size():
    cfg = tiny_config("cityscapes")
    for kind in MASK_KINDS:
        labels, instances = mask_batch(kind, 1, 2, 36, 44, label_set_for(cfg))
        assert labels.shape == instances.shape == (2, 36, 44) and labels.dtype == np.uint8, kind


def test_sparse_variants_parse_and_label():
    assert GraphVariant.parse("sparse:lookup") == GraphVariant("sparse", "lookup", False)
    assert GraphVariant.parse("sparse:conv+fused").label == "sparse:conv+fused"
    assert GraphVariant("sparse").label == "sparse:conv+fused"  # fast's defaults
    assert GraphVariant.parse("sparse:lookup@0.3") == GraphVariant("sparse", "lookup", False, dense_above=0.3)
    assert GraphVariant("sparse", dense_above=1).label == "sparse:conv+fused@1"
    assert GraphVariant.from_dict(GraphVariant("sparse", dense_above=0.25).to_dict()).dense_above == 0.25
    with pytest.raises(ValueError, match=r"dense_above=1.5; accepted: a band fraction from 0 .* to 1"):
        GraphVariant("sparse", dense_above=1.5)
    with pytest.raises(ValueError, match="dense_above=0.5 is the sparse graph's threshold; the fast graph has none"):
        GraphVariant("fast", dense_above=0.5)
    with pytest.raises(ValueError, match="mask_conv='gather'; accepted: conv, lookup"):
        GraphVariant.parse("sparse:gather")
    with pytest.raises(ValueError, match="sparse:lookup"):
        GraphVariant.parse("dense:conv")


# ------------------------------------------------------------------------------------------------ full size
@pytest.mark.slow
@pytest.mark.parametrize("preset, mask_conv", [("cityscapes", "conv"), ("ade20k", "lookup"), ("coco", "lookup")])
def test_sparse_equals_dense_at_full_size_in_onnx_runtime(preset, mask_conv, tmp_path):
    """The acceptance: max |diff| <= 1e-5 in fp32 against the dense fast graph (the same mask conv) on every mask
    kind, uint8 within 1 level on >= 99.99% of the values, with the default threshold (scenes: the fine levels
    sparse; noise: all dense); and every block forced sparse on the noise map (all band through the sparse path)."""
    cfg = GeneratorConfig.preset(preset)
    generator = random_generator(cfg, 0)
    paths = {}
    for name, variant in (("dense", GraphVariant("fast", mask_conv, False)),
                          ("sparse", GraphVariant("sparse", mask_conv, False))):
        paths[name] = tmp_path / f"{name}.onnx"
        meta = export_generator(generator, paths[name], Shapes(Range(1, 1, 1)), variant=variant)
    runs = {name: onnx_runner(path) for name, path in paths.items()}
    for kind in MASK_KINDS:
        feeds = generator_feeds(meta, *mask_batch(kind, 3000, 1, *cfg.image_size, label_set_for(cfg)))
        out, dense = runs["sparse"](feeds)[0], runs["dense"](feeds)[0]
        levels = np.abs(image_to_uint8(out).astype(int) - image_to_uint8(dense).astype(int))
        assert np.abs(out - dense).max() <= 1e-5, (kind, float(np.abs(out - dense).max()))
        assert (levels <= 1).mean() >= 0.9999, kind
    # all band through the sparse path, in eager (the same ops): against the dense graph in float64, as close as
    # the dense graph's own float32 (noise maps amplify rounding: 3e-5 at full size, the reference graph's too)
    feeds = {k: torch.from_numpy(v) for k, v in feeds.items()}  # the noise map, the last kind
    with torch.no_grad():
        always_sparse = GraphVariant("sparse", mask_conv, False, dense_above=1.0)
        forced = GeneratorGraph(generator, variant=always_sparse).eval()(**feeds)
        dense = GeneratorGraph(generator, variant=GraphVariant("fast", mask_conv, False)).eval()
        exact = copy.deepcopy(dense).double()(**feeds)
        rounding = float((dense(**feeds).double() - exact).abs().max())
    assert float((forced.double() - exact).abs().max()) <= 1.5 * rounding + 1e-6
