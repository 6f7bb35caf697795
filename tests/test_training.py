"""The training recipe end to end on CPU with tiny models: runs, checkpoints, resume, crash safety, DDP (gloo),
bf16 / channels_last, and the export of what it writes. Loss terms and metrics on hand-computable inputs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from export.cli import main as export_main
from gaugan_sdk.checkpoint import load_checkpoint
from training import run, train
from training.discriminator import MultiscaleDiscriminator
from training.losses import (VGG19Features, VGGLoss, feature_matching_loss, hinge_d_loss, hinge_g_loss, kl_loss)
from training.inception import FIDInceptionV3, load_fid_inception
from training.metrics import FID, ConfusionMatrix, frechet_distance, torchscript_segmenter
from training.options import TrainOptions
from training.trainer import init_weights, learning_rate

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "ngf=8", "--set", "spade_hidden=16", "--set", "crop_size=64", "--ndf", "8", "--batch-size", "2",
        "--procedural-scenes", "16", "--eval-samples", "4", "--log-every", "1"]


def _train(tmp_path: Path, *extra: str) -> Path:
    return train.main([*TINY, "--outdir", str(tmp_path / "runs"), *extra])


def _logged_losses(run_dir: Path) -> dict[int, str]:
    """iteration -> the losses part of its progress line."""
    out = {}
    for line in (run_dir / "log.txt").read_text().splitlines():
        fields = line.split(" | ")
        out[int(fields[0].split()[1].split("/")[0])] = fields[4]
    return out


# ---------------------------------------------------------------------------------------------- losses
def test_hinge_losses_by_hand():
    real = [[torch.zeros(1), torch.tensor([2.0, -0.5])], [torch.zeros(1), torch.tensor([0.5])]]
    fake = [[torch.zeros(1), torch.tensor([-3.0, 1.0])], [torch.zeros(1), torch.tensor([0.0])]]
    d_real, d_fake = hinge_d_loss(real, fake)
    # scale 0: mean(relu(1-2), relu(1+0.5)) = 0.75; scale 1: relu(0.5) = 0.5; averaged: 0.625
    assert d_real.item() == pytest.approx(0.625)
    # fake: scale 0: mean(relu(1-3), relu(1+1)) = 1; scale 1: 1; averaged: 1
    assert d_fake.item() == pytest.approx(1.0)
    assert hinge_g_loss(fake).item() == pytest.approx(-(-1.0 + 0.0) / 2)


def test_feature_matching_by_hand():
    real = [[torch.zeros(2, 2), torch.ones(3), torch.tensor([5.0])], [torch.zeros(4), torch.tensor([9.0])]]
    fake = [[torch.ones(2, 2), torch.ones(3) * 3, torch.tensor([0.0])], [torch.full((4,), 0.5), torch.zeros(1)]]
    # L1 per feature (logits excluded): 1, 2 | 0.5; each x 10 / num_D (2)
    assert feature_matching_loss(fake, real, 10.0).item() == pytest.approx((1 + 2 + 0.5) * 5)
    # the real features are targets: no gradient reaches them
    r = torch.zeros(3, requires_grad=True)
    feature_matching_loss([[torch.ones(3, requires_grad=True), torch.zeros(1)]], [[r, torch.zeros(1)]]).backward()
    assert r.grad is None


def test_kl_by_hand():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, np.log(4.0)]])
    # -0.5 * [(1 + 0 - 1 - 1) + (1 + ln4 - 0 - 4)] = -0.5 * (-1 - 3 + ln4) = 2 - ln4 / 2
    assert kl_loss(mu, logvar).item() == pytest.approx(2 - np.log(4.0) / 2, rel=1e-6)
    assert kl_loss(torch.zeros(4, 8), torch.zeros(4, 8)).item() == 0  # N(0, I) costs nothing


def test_vgg19_loads_torchvision_keys_and_scores_differences(tmp_path):
    vgg = VGG19Features()
    keys = [k for k in vgg.state_dict()]
    assert keys[0] == "features.0.weight" and keys[-1] == "features.28.bias" and len(keys) == 26
    state = {k: torch.randn_like(v) * 0.05 for k, v in vgg.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry the classifier too
    torch.save(state, tmp_path / "vgg19.pth")
    loss = VGGLoss(VGG19Features.from_file(tmp_path / "vgg19.pth"))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == 0
    assert loss(x, x.flip(-1)).item() > 0
    del state["features.28.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="not a torchvision VGG19 state dict: missing features.28.weight"):
        VGG19Features.from_file(tmp_path / "broken.pth")


def test_discriminator_matches_the_reference_shapes_and_size():
    D = MultiscaleDiscriminator(36 + 3)  # cityscapes: semantic_nc 36 + RGB
    assert sum(p.numel() for p in D.parameters()) / 1e6 == pytest.approx(5.60, abs=0.005)
    with torch.no_grad():
        out = D(torch.zeros(1, 39, 256, 256))
    shapes = [[(f.shape[1], f.shape[2]) for f in scale] for scale in out]
    assert shapes == [[(64, 129), (128, 65), (256, 33), (512, 34), (1, 35)],
                      [(64, 65), (128, 33), (256, 17), (512, 18), (1, 19)]]
    assert {k.split(".")[0] for k in D.state_dict()} == {"discriminator_0", "discriminator_1"}
    assert "discriminator_0.model1.0.weight_orig" in D.state_dict()


def test_learning_rate_schedule_and_init():
    lrs = [learning_rate(1.0, e, niter=2, niter_decay=4) for e in range(6)]
    assert lrs == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert learning_rate(1.0, 99, 2, 0) == 1.0
    conv = torch.nn.Conv2d(64, 64, 3)
    init_weights(conv)
    expected = 0.02 * np.sqrt(2 / (64 * 9 + 64 * 9))
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.05) and conv.bias.abs().max() == 0


def test_ttur_and_option_errors():
    o = TrainOptions().resolved()
    assert (o.lr_G, o.lr_D, o.beta1, o.beta2) == (1e-4, 4e-4, 0.0, 0.9)
    o = TrainOptions(no_TTUR=True).resolved()
    assert (o.lr_G, o.lr_D, o.beta1, o.beta2) == (2e-4, 2e-4, 0.5, 0.999)
    with pytest.raises(ValueError, match="dataset='kitti'; accepted: procedural, cityscapes"):
        TrainOptions(dataset="kitti").resolved()
    with pytest.raises(ValueError, match="dataset=cityscapes needs --dataroot"):
        TrainOptions(dataset="cityscapes").resolved()
    with pytest.raises(ValueError, match="precision='fp16'; accepted: fp32, bf16"):
        TrainOptions(precision="fp16").resolved()
    with pytest.raises(ValueError, match="unknown override"):
        TrainOptions(model={"ngff": 3}).resolved()


# ---------------------------------------------------------------------------------------------- metrics
def test_confusion_matrix_and_miou_by_hand():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 0, 1, 1, 2, 255]), np.array([0, 1, 1, 1, 0, 2]))  # 255 ignored
    # class 0: tp 1, union 3 -> 1/3; class 1: tp 2, union 3 -> 2/3; class 2: tp 0, union 1 -> 0
    np.testing.assert_allclose(cm.iou(), [1 / 3, 2 / 3, 0])
    assert cm.mean_iou() == pytest.approx(1 / 3) and cm.accuracy() == pytest.approx(3 / 5)


def test_frechet_distance_by_hand(rng):
    a = rng.standard_normal((4000, 4))
    assert abs(frechet_distance(a, a)) < 1e-6
    # same covariance, means 1 apart in every dimension: FID = |delta mu|^2 = 4
    assert frechet_distance(a, a + 1) == pytest.approx(4.0, abs=1e-6)
    # N(0, I) vs N(0, 4 I): tr(I + 4I - 2 * 2I) = 4 (x 1 per dim), about 4 from samples
    assert frechet_distance(a, rng.standard_normal((4000, 4)) * 2) == pytest.approx(4.0, abs=0.5)


class _Segmenter(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[:, 0], x[:, 1]], 1)[:, :, ::2, ::2]  # "class 0 if redder" at half resolution


def test_torchscript_segmenter_from_a_path(tmp_path):
    torch.jit.save(torch.jit.script(_Segmenter()), tmp_path / "seg.pt")
    images = np.zeros((2, 8, 8, 3), np.uint8)
    images[0, ..., 0] = 200
    images[1, ..., 1] = 200
    predicted = torchscript_segmenter(tmp_path / "seg.pt", torch.device("cpu"))(images)
    assert predicted.shape == (2, 8, 8) and (predicted[0] == 0).all() and (predicted[1] == 1).all()
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="is not a TorchScript"):
        torchscript_segmenter(tmp_path / "junk.pt", torch.device("cpu"))


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory) -> Path:
    """A weights file in the format of pytorch-fid's pt_inception-2015-12-05-6726825d.pth (a plain state dict of
    the FID Inception-v3, fc of 1008 classes included), with random weights whose batch-norm statistics are
    estimated on random images (else the signal fades through 90 layers and every image gives one feature)."""
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the estimation batches
    with torch.no_grad():
        model.train()(torch.rand(6, 3, 64, 64))
    path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-random.pth"
    torch.save({k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    return path


def test_fid_inception_loads_the_weights_file_and_gives_2048_features(fid_weights, tmp_path):
    model = load_fid_inception(fid_weights)
    # torchvision's Inception-v3 without AuxLogits has 23,834,568 parameters with 1000 classes; fc of 1008: +16,392
    assert sum(p.numel() for p in model.parameters()) == 23_850_960
    images = torch.rand(2, 3, 64, 96)
    features = model(images)  # any size: resized to 299x299 first
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    torch.testing.assert_close(features, model(torch.nn.functional.interpolate(images, (299, 299), mode="bilinear",
                                                                               align_corners=False)))
    with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05-6726825d.pth, a state dict; nothing is "
                                                "downloaded"):
        load_fid_inception(tmp_path / "missing.pth")
    torch.jit.save(torch.jit.script(_Segmenter()), tmp_path / "scripted.pt")  # what the old loader wanted
    with pytest.raises(ValueError, match="is not a state dict of weights"):
        load_fid_inception(tmp_path / "scripted.pt")
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="does not fit the FID Inception-v3: .* missing keys"):
        load_fid_inception(tmp_path / "partial.pth")


def test_fid_is_zero_on_identical_sets_and_matches_the_frechet_distance_of_its_features(fid_weights):
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (10, 32, 48, 3), dtype=np.uint8)
    fake = np.clip(real.astype(int) + 60, 0, 255).astype(np.uint8)  # a brighter copy
    fid = FID(fid_weights, torch.device("cpu"))
    fid.update(real, real=True)
    fid.update(real, real=False)
    with pytest.warns(UserWarning, match="FID on 10 generated images: below 2048 samples .* not comparable"):
        identical = fid.compute()
    fid.update(fake, real=False)  # the real statistics stay: only the generated side is given again
    assert fid.has_real
    value = fid.compute()
    model = load_fid_inception(fid_weights)
    with torch.no_grad():
        features = [model(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255).double().numpy()
                    for x in (fake, real)]
    print(f"FID identical {identical:.3g}, brighter {value:.4g}, numpy on the same features "
          f"{frechet_distance(*features):.4g}")
    assert abs(identical) < 1e-4 * value  # zero up to the rounding of 10 samples in 2048 dimensions
    assert value == pytest.approx(frechet_distance(*features), rel=1e-4)


# ---------------------------------------------------------------------------------------------- runs
def test_a_20_iteration_run_writes_checkpoints_grids_scalars_and_exports(tmp_path, capsys):
    run_dir = _train(tmp_path, "--max-iters", "20", "--checkpoint-every", "10", "--image-every", "10")
    printed = capsys.readouterr().out
    assert run_dir.name == "00000-procedural"
    options = json.loads((run_dir / "options.json").read_text())
    assert options["model"]["ngf"] == 8 and options["options"]["max_iters"] == 20
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["iter_0000010.pt", "iter_0000020.pt"]
    assert sorted(p.name for p in (run_dir / "images").iterdir()) == ["iter_0000010.png", "iter_0000020.png"]
    losses = _logged_losses(run_dir)
    assert sorted(losses) == list(range(1, 21))
    values = [float(v) for line in losses.values() for v in re.findall(r"-?\d+\.\d+", line)]
    assert values and all(np.isfinite(values))
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["iteration"] == 20 and 0 <= metrics[-1]["mIoU"] <= 1
    assert metrics[-1]["mIoU_real_images"] > 0.5  # the oracle itself works at this size
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0}).Reload()
    assert {"loss/G_GAN", "loss/G_feat", "loss/D_real", "loss/D_fake", "metrics/mIoU"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("loss/G_GAN")) == 20 and events.Tags()["images"]
    assert "next: gaugan-export --checkpoint" in printed

    ckpt = load_checkpoint(run_dir / "checkpoints" / "iter_0000020.pt")
    assert ckpt.training["iteration"] == 20 and ckpt.config.ngf == 8
    out = tmp_path / "engines" / "run.onnx"
    out.parent.mkdir()
    assert export_main(["--checkpoint", str(run_dir / "checkpoints" / "iter_0000020.pt"), "--engine", "fp32",
                        "--format", "onnx", "--output", str(out), "--calib-count", "2"]) == 0
    assert out.is_file() and (out.parent / "run.onnx.json").is_file()


def test_resume_continues_with_identical_losses(tmp_path):
    full = _train(tmp_path / "a", "--max-iters", "20", "--checkpoint-every", "10", "--image-every", "0")
    part = _train(tmp_path / "b", "--max-iters", "10", "--checkpoint-every", "10", "--image-every", "0")
    resumed = train.main(["--resume", str(part), "--max-iters", "20"])
    assert resumed == part
    a, b = _logged_losses(full), _logged_losses(part)
    assert sorted(b) == list(range(1, 21))  # 1..10, then 11..20 after the resume
    for it in range(1, 21):
        assert a[it] == b[it], f"iteration {it}: {a[it]} != {b[it]}"
    assert load_checkpoint(part / "checkpoints" / "iter_0000020.pt").training["iteration"] == 20


def test_resume_of_weights_only_checkpoint_is_refused(tmp_path):
    run_dir = _train(tmp_path, "--max-iters", "2", "--checkpoint-every", "2", "--image-every", "0")
    ckpt = load_checkpoint(run_dir / "checkpoints" / "iter_0000002.pt")
    ckpt.training = None
    ckpt.save(tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="no training state"):
        train.main(["--resume", str(tmp_path / "weights.pt")])
    with pytest.raises(FileNotFoundError, match="no such checkpoint file or run directory"):
        train.main(["--resume", str(tmp_path / "nowhere")])


KILL_DURING_SECOND_SAVE = """
import os, signal, sys, torch
real_save, calls = torch.save, []
def save(obj, f, *a, **k):
    calls.append(f)
    if len(calls) == 2:  # the second checkpoint: write half of it, then die as a kill -9 would
        with open(f, "wb") as out:
            out.write(b"PK\\x03\\x04 half a checkpoint")
            out.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *a, **k)
torch.save = save
from training import train
train.main(sys.argv[1:])
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    argv = [*TINY, "--outdir", str(tmp_path / "runs"), "--max-iters", "8", "--checkpoint-every", "4",
            "--image-every", "0"]
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_SECOND_SAVE, *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    run_dir = tmp_path / "runs" / "00000-procedural"
    folder = run_dir / "checkpoints"
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers and all(".tmp" in name for name in leftovers)  # the half-written file is a temporary
    assert load_checkpoint(folder / "iter_0000004.pt").training["iteration"] == 4
    assert train.main(["--resume", str(run_dir)]) == run_dir  # continues from iteration 4
    assert load_checkpoint(folder / "iter_0000008.pt").training["iteration"] == 8


@pytest.mark.parametrize("flags", [["--precision", "bf16"], ["--channels-last"]], ids=["bf16", "channels_last"])
def test_bf16_and_channels_last_keep_losses_finite(tmp_path, flags):
    run_dir = _train(tmp_path, "--max-iters", "3", "--checkpoint-every", "3", "--image-every", "0", *flags)
    values = [float(v) for line in _logged_losses(run_dir).values() for v in re.findall(r"-?\d+\.\d+", line)]
    assert len(values) == 12 and all(np.isfinite(values))


def test_style_encoder_recipe_trains_with_the_kl_term(tmp_path):
    run_dir = _train(tmp_path, "--use-vae", "--max-iters", "2", "--checkpoint-every", "2", "--image-every", "0",
                     "--set", "crop_size=256", "--set", "aspect_ratio=1.0", "--set", "num_upsampling_layers=normal",
                     "--set", "ngf=4", "--set", "spade_hidden=8", "--procedural-scenes", "4", "--batch-size", "1")
    assert "G_KLD" in _logged_losses(run_dir)[2]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "iter_0000002.pt")
    assert ckpt.encoder is not None and ckpt.config.use_vae


def test_two_process_gloo_ddp_run_agrees_across_ranks(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
         "training.train", *TINY, "--outdir", str(tmp_path / "runs"), "--max-iters", "4", "--checkpoint-every", "4",
         "--image-every", "0", "--device", "cpu"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "2 process(es)" in proc.stdout
    match = re.search(r"replicas agree across 2 ranks: G \|w\| sums \[([^\]]+)\]", proc.stdout)
    assert match, proc.stdout
    sums = [float(v) for v in match.group(1).split(",")]
    assert sums[0] == sums[1]
    assert load_checkpoint(tmp_path / "runs" / "00000-procedural" / "checkpoints" / "iter_0000004.pt")


def test_dry_run_prints_the_resolved_options(capsys):
    assert train.main(["--dry-run", "--set", "ngf=16", "--no-TTUR"]) is None
    data = json.loads(capsys.readouterr().out)
    assert data["model"]["ngf"] == 16 and data["options"]["beta1"] == 0.5 and data["options"]["batch_size"] == 4


@pytest.mark.slow
def test_learning_on_the_procedural_dataset(tmp_path):
    """A short CPU run: the oracle mIoU of generated held-out scenes rises far above chance (about 0.04)."""
    run_dir = train.main(["--set", "ngf=16", "--set", "spade_hidden=32", "--set", "crop_size=128", "--ndf", "16",
                          "--batch-size", "8", "--max-iters", "200", "--eval-samples", "16", "--log-every", "50",
                          "--image-every", "0", "--checkpoint-every", "200", "--outdir", str(tmp_path)])
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    print(f"after 200 iterations: oracle mIoU {metrics['mIoU']:.3f} (real renderings {metrics['mIoU_real_images']:.3f})")
    assert metrics["mIoU"] > 0.4


def test_training_benchmark_compares_precisions_and_layouts(capsys):
    from training.benchmark import main as bench_main

    rows = bench_main(["--set", "crop_size=128", "--set", "ngf=8", "--set", "spade_hidden=16", "--ndf", "8",
                       "--warmup", "1", "--iters", "1", "--device", "cpu"])
    assert [(r["precision"], r["channels_last"]) for r in rows] == [("fp32", False), ("fp32", True),
                                                                    ("bf16", False), ("bf16", True)]
    assert all(r["finite"] and r["it_per_s"] > 0 for r in rows)
    assert "cityscapes recipe on procedural scenes, 64x128" in capsys.readouterr().out


def test_resume_of_a_moved_run_writes_only_into_the_copy(tmp_path, monkeypatch):
    """A run directory copied elsewhere and resumed from another working directory continues in the copy: the
    original's checkpoints are neither added to nor pruned (the checkpoint once stored where it was written)."""
    original = _train(tmp_path / "a", "--max-iters", "8", "--checkpoint-every", "2", "--image-every", "0")
    before = {p.name: p.read_bytes() for p in (original / "checkpoints").iterdir()}
    assert sorted(before) == ["iter_0000004.pt", "iter_0000006.pt", "iter_0000008.pt"]
    copy = tmp_path / "elsewhere" / "my-run"
    shutil.copytree(original, copy)
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert train.main(["--resume", "my-run", "--max-iters", "12"]) == copy.resolve()
    assert {p.name: p.read_bytes() for p in (original / "checkpoints").iterdir()} == before
    assert [p.name for p in run.list_checkpoints(copy)] == ["iter_0000008.pt", "iter_0000010.pt", "iter_0000012.pt"]
    assert not (tmp_path / "elsewhere" / "runs").exists()  # no new run tree beside it
    bare = tmp_path / "elsewhere" / "bare.pt"  # a checkpoint outside any run directory: a new run in --outdir
    shutil.copy(copy / "checkpoints" / "iter_0000012.pt", bare)
    fresh = train.main(["--resume", str(bare), "--max-iters", "14", "--outdir", str(tmp_path / "fresh")])
    assert fresh.parent == tmp_path / "fresh" and [p.name for p in run.list_checkpoints(fresh)] == ["iter_0000014.pt"]


def test_relative_weight_paths_are_stored_absolute_and_a_path_given_again_replaces_the_stored_one(
        tmp_path, monkeypatch, capsys):
    """Was: a run started with a relative --seg-model could not be resumed from another folder, and giving the
    path again was silently ignored."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    torch.jit.save(torch.jit.script(_Segmenter()), tmp_path / "a" / "seg.pt")
    monkeypatch.chdir(tmp_path / "a")
    run_dir = _train(tmp_path, "--max-iters", "2", "--checkpoint-every", "2", "--image-every", "0", "--seg-model",
                     "seg.pt")
    stored = json.loads((run_dir / "options.json").read_text())["options"]["seg_model"]
    assert stored == str(tmp_path / "a" / "seg.pt")
    monkeypatch.chdir(tmp_path / "b")  # another folder: the stored path still holds
    assert train.main(["--resume", str(run_dir), "--max-iters", "4"]) == run_dir
    (tmp_path / "a" / "seg.pt").rename(tmp_path / "b" / "moved.pt")
    with pytest.raises(FileNotFoundError, match=r"--seg-model .*a/seg\.pt, stored by the run, no longer exists; "
                                                r"give it again: --seg-model PATH"):
        train.main(["--resume", str(run_dir), "--max-iters", "6"])
    capsys.readouterr()
    assert train.main(["--resume", str(run_dir), "--max-iters", "6", "--seg-model", "moved.pt"]) == run_dir
    assert f"--seg-model {tmp_path / 'b' / 'moved.pt'} replaces the stored {tmp_path / 'a' / 'seg.pt'}" in \
        capsys.readouterr().out
    ckpt = load_checkpoint(run_dir / "checkpoints" / "iter_0000006.pt")
    assert ckpt.training["options"]["seg_model"] == str(tmp_path / "b" / "moved.pt")
    with pytest.raises(FileNotFoundError, match=r"--vgg-weights .*nowhere\.pth: no such file"):
        _train(tmp_path / "c", "--max-iters", "2", "--vgg-weights", "nowhere.pth")


def test_options_given_with_resume_are_said_to_apply_or_be_ignored(tmp_path, capsys):
    """Was: --lr, --batch-size, --set ... given with --resume were silently ignored."""
    run_dir = _train(tmp_path, "--max-iters", "2", "--checkpoint-every", "2", "--image-every", "0")
    capsys.readouterr()
    train.main(["--resume", str(run_dir), "--max-iters", "3", "--lr", "0.001", "--batch-size", "4", "--set",
                "ngf=16", "--outdir", str(tmp_path / "runs")])
    said = capsys.readouterr().out
    assert "resume: from the command line, applied: --max-iters 3, --outdir" in said
    assert "; ignored (the run's stored values kept): --lr 0.001 (stored 0.0002), --batch-size 4 (stored 2), " \
           "--set ngf=16 (the model is the checkpoint's)" in said


def test_resuming_a_finished_run_or_an_older_checkpoint_keeps_the_newer_files(tmp_path, capsys):
    """Was: resuming a run already at --max-iters printed "done" naming a checkpoint it had not written; resuming
    an older checkpoint of a run wrote over the newer timeline (its log, its later checkpoints)."""
    run_dir = _train(tmp_path, "--max-iters", "4", "--checkpoint-every", "2", "--image-every", "0")
    files = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert train.main(["--resume", str(run_dir)]) == run_dir
    said = capsys.readouterr().out
    assert "nothing to train: iter_0000004.pt is at iteration 4, where this run ends (4); give --max-iters above 4" \
        in said and "done:" not in said
    older = run_dir / "checkpoints" / "iter_0000002.pt"
    branch = train.main(["--resume", str(older), "--max-iters", "4"])
    said = capsys.readouterr().out
    assert branch != run_dir and branch.parent == run_dir.parent and branch.name == "00001-procedural-from-2"
    assert f"iter_0000002.pt is not the newest checkpoint of {run_dir.name} (iter_0000004.pt is): continuing in a " \
           f"new run {branch.name}" in said
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == files  # the newer timeline as it was
    assert said.rstrip().splitlines()[-2] == f"  checkpoint {branch / 'checkpoints' / 'iter_0000004.pt'}"


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    """Was: a start that failed after its run folder was made (weights missing, a bad first sample) left a
    numbered folder with options.json and an events file, and the next run took the next number."""
    with pytest.raises(FileNotFoundError, match="--inception-weights .*nowhere.pth: no such file"):
        _train(tmp_path, "--max-iters", "2", "--inception-weights", str(tmp_path / "nowhere.pth"))
    from test_datasets import make_custom
    from PIL import Image

    make_custom(tmp_path / "data", count=2, instances=False)
    Image.fromarray(np.full((64, 64), 40, np.uint8)).save(tmp_path / "data" / "labels" / "s0.png")  # ids 0..7 only
    with pytest.raises(ValueError, match=r"label map .*s0\.png: label id\(s\) out of range"):
        _train(tmp_path, "--dataset", "custom", "--label-dir", str(tmp_path / "data" / "labels"), "--image-dir",
               str(tmp_path / "data" / "images"), "--set", "label_nc=8", "--load-size", "64", "--max-iters", "2")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_training_evaluation_reports_fid_with_the_weights_file(tmp_path, fid_weights):
    with pytest.warns(UserWarning, match="below 2048 samples"):
        run_dir = _train(tmp_path, "--max-iters", "4", "--eval-every", "2", "--eval-samples", "4", "--image-every",
                         "0", "--checkpoint-every", "4", "--inception-weights", str(fid_weights))
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == [2, 4]
    assert all(np.isfinite(m["FID"]) and m["FID"] > 0 for m in metrics)
    assert metrics[0]["FID"] != metrics[1]["FID"]  # the generator moved; the real statistics were kept
