import pickle
import re
import shutil
from collections import OrderedDict

import numpy as np
import pytest
import torch

from helpers import random_labels, tiny_config
from gaugan_sdk.checkpoint import FORMAT, Checkpoint, import_nvlabs, load_checkpoint, save_checkpoint
from gaugan_sdk.labels import to_semantics
from gaugan_sdk.models import ConvEncoder
from helpers import assert_informative, old_form, realistic_generator


def trained_like(cfg, seed=0):
    """A generator (and encoder) whose running stats and spectral-norm vectors moved, in eval mode."""
    generator = realistic_generator(cfg, seed)
    encoder = ConvEncoder(cfg).eval() if cfg.use_vae else None
    return generator, encoder


def outputs(generator, cfg):
    labels, instance = random_labels(cfg, batch=2)
    seg = torch.from_numpy(to_semantics(labels, instance, cfg))
    z = torch.randn(2, cfg.z_dim, generator=torch.Generator().manual_seed(0)) if cfg.use_vae else None
    with torch.no_grad():
        image = generator(seg, z)
    assert_informative(image)
    return image


def write_nvlabs_folder(folder, generator, encoder=None, epoch="latest"):
    """What NVlabs/SPADE writes: torch.save(net.cpu().state_dict()) per network, plain OrderedDicts."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(OrderedDict(generator.state_dict()), folder / f"{epoch}_net_G.pth")
    if encoder is not None:
        torch.save(OrderedDict(encoder.state_dict()), folder / f"{epoch}_net_E.pth")
    return folder


def test_our_format_round_trip(tmp_path):
    cfg = tiny_config("coco", use_vae=True)
    generator, encoder = trained_like(cfg)
    path = save_checkpoint(tmp_path / "model.pt", cfg, generator, encoder, training={"iteration": 7})
    raw = torch.load(path, weights_only=True)  # plain data and tensors only
    assert raw["format"] == FORMAT and raw["config"] == cfg.to_dict()
    ckpt = load_checkpoint(path)
    assert ckpt.config == cfg and ckpt.training == {"iteration": 7}
    assert ckpt.source["kind"] == "gaugan-sdk" and len(ckpt.source["sha256"]["checkpoint"]) == 64
    assert torch.equal(outputs(ckpt.build_generator(), cfg), outputs(generator, cfg))
    style = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(ckpt.build_encoder()(style), encoder(style)))
    assert not ckpt.build_generator().training


def test_nvlabs_folder_imports_unchanged(tmp_path):
    cfg = tiny_config("cityscapes")
    generator, _ = trained_like(cfg)
    folder = write_nvlabs_folder(tmp_path / "cityscapes_pretrained", generator)
    for path in (folder, folder / "latest_net_G.pth"):  # the folder or the file
        ckpt = load_checkpoint(path, "cityscapes", ngf=8, spade_hidden=16, crop_size=128)
        assert ckpt.source["kind"] == "nvlabs" and ckpt.encoder is None
        assert torch.equal(outputs(ckpt.build_generator(), cfg), outputs(generator, cfg))
    # and the imported weights save into our format and come back the same
    ours = load_checkpoint(import_nvlabs(folder, cfg).save(tmp_path / "ours.pt"))
    assert torch.equal(outputs(ours.build_generator(), cfg), outputs(generator, cfg))


def test_nvlabs_vae_folder_with_encoder_and_epoch(tmp_path):
    cfg = tiny_config("ade20k", use_vae=True)
    generator, encoder = trained_like(cfg)
    folder = write_nvlabs_folder(tmp_path / "ade", generator, encoder, epoch="20")
    ckpt = import_nvlabs(folder, cfg, epoch="20")
    assert set(ckpt.source["files"]) == {"generator", "encoder"}
    assert torch.equal(outputs(ckpt.build_generator(), cfg), outputs(generator, cfg))


def test_old_spectral_norm_keys_and_module_prefix_import(tmp_path):
    cfg = tiny_config("cityscapes")
    generator, _ = trained_like(cfg)
    old = {f"module.{k}": v for k, v in old_form(generator.state_dict()).items()}  # DataParallel-saved, old SN
    (tmp_path / "old").mkdir()
    torch.save(old, tmp_path / "old" / "latest_net_G.pth")
    ckpt = load_checkpoint(tmp_path / "old", cfg)
    torch.testing.assert_close(outputs(ckpt.build_generator(), cfg), outputs(generator, cfg), rtol=0, atol=1e-5)


def test_shape_mismatch_names_the_fitting_preset(tmp_path):
    generator, _ = trained_like(tiny_config("cityscapes"))
    folder = write_nvlabs_folder(tmp_path / "city", generator)
    with pytest.raises(ValueError, match=r"fc.weight \(128, 36, 3, 3\) in the file, \(128, 151, 3, 3\) in the model"
                                         r"(.|\n)*Presets with semantic_nc=36: cityscapes"):
        load_checkpoint(folder, tiny_config("ade20k"))
    with pytest.raises(ValueError, match="ngf=8"):
        load_checkpoint(folder, "cityscapes")  # full width ngf=64 against an ngf=8 file


def test_vae_mismatch_and_missing_encoder(tmp_path):
    cfg = tiny_config("cityscapes")
    generator, _ = trained_like(cfg)
    folder = write_nvlabs_folder(tmp_path / "city", generator)
    with pytest.raises(FileNotFoundError, match=r"style encoder .*latest_net_E.pth is needed"):
        load_checkpoint(folder, cfg.replace(use_vae=True))
    torch.save(ConvEncoder(cfg).state_dict(), folder / "latest_net_E.pth")
    with pytest.raises(ValueError, match=r"Pass use_vae=False"):
        load_checkpoint(folder, cfg.replace(use_vae=True))


@pytest.mark.parametrize("case, error, message", [
    ("missing", FileNotFoundError, "checkpoint not found"),
    ("no_preset", ValueError, "pass a preset"),
    ("wrong_name_no_preset", ValueError, "neither a gaugan-sdk checkpoint nor an NVlabs generator file"),
    ("bad_preset", ValueError, "unknown preset 'kitti'"),
    ("empty_folder", FileNotFoundError, r"no latest_net_G.pth in .*; generator files there: none"),
    ("truncated", ValueError, r"not a readable PyTorch checkpoint \(truncated or corrupted\?\)"),
    ("pickled_code", ValueError, r"not a gaugan-sdk or NVlabs checkpoint: it is not a file torch.save wrote \(a "
                                 r"Python pickle\)"),
    ("not_a_state_dict", ValueError, "does not hold a plain state dict"),
    ("wrong_name", ValueError, "neither a gaugan-sdk checkpoint nor an NVlabs generator file"),
])
def test_bad_checkpoints_are_clear_errors(tmp_path, case, error, message):
    cfg = tiny_config("cityscapes")
    generator, _ = trained_like(cfg)
    good = write_nvlabs_folder(tmp_path / "good", generator) / "latest_net_G.pth"
    path, config = tmp_path / "x" / "latest_net_G.pth", cfg
    path.parent.mkdir()
    if case == "missing":
        path = tmp_path / "nowhere.pt"
    elif case == "no_preset":
        path, config = good, None
    elif case == "bad_preset":
        path, config = good, "kitti"
    elif case == "empty_folder":
        path = path.parent
    elif case == "truncated":
        path.write_bytes(good.read_bytes()[:1000])
    elif case == "pickled_code":
        path.write_bytes(pickle.dumps({"net": torch.nn.Linear(1, 1)}, protocol=2))
    elif case == "not_a_state_dict":
        torch.save({"generator": {"a": 1}}, path)
    elif case.startswith("wrong_name"):
        path = path.with_name("generator.pth")
        torch.save(generator.state_dict(), path)
        config = None if case.endswith("no_preset") else config
    with pytest.raises(error, match=message):
        load_checkpoint(path, config)


def test_files_that_are_not_checkpoints_are_said_so_without_torchs_advice_to_load_them_unsafely(tmp_path):
    """Was: "holds pickled Python objects ... Detail: Weights only load failed ... Re-running torch.load with
    weights_only set to False will likely succeed" for a plain pickle, a numpy file or a whole pickled model."""
    cases = {"model.pt": "holds pickled Python objects \\(torch.nn.modules.linear.Linear: a whole pickled model\\)",
             "dict.pt": r"not a file torch.save wrote \(a Python pickle\)",
             "array.pt": r"not a file torch.save wrote \(a numpy .npy file\)",
             "notes.pt": r"not a file torch.save wrote \(text\)", "empty.pt": r"\(an empty file\)"}
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pt")
    (tmp_path / "dict.pt").write_bytes(pickle.dumps({"a": 1}))
    with open(tmp_path / "array.pt", "wb") as f:
        np.save(f, np.zeros(3))
    (tmp_path / "notes.pt").write_text("hello")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name, message in cases.items():
        with pytest.raises(ValueError, match="is not a gaugan-sdk or NVlabs checkpoint") as caught:
            load_checkpoint(tmp_path / name, "cityscapes")
        assert re.search(message, str(caught.value)) and "weights_only=False" not in str(caught.value)
        assert "weights_only` set to `False`" not in str(caught.value) and "trust" not in str(caught.value)
    cfg = tiny_config("cityscapes")  # the released NVlabs files predate PyTorch 1.6's zip format: they still load
    generator, _ = trained_like(cfg)
    legacy = tmp_path / "old" / "latest_net_G.pth"
    legacy.parent.mkdir()
    torch.save(generator.state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert load_checkpoint(legacy.parent, cfg).config == cfg


def test_our_checkpoint_refuses_overrides_and_other_configs(tmp_path):
    cfg = tiny_config("coco")
    path = save_checkpoint(tmp_path / "m.pt", cfg, trained_like(cfg)[0])
    with pytest.raises(ValueError, match="overrides .*use_vae.* cannot apply"):
        load_checkpoint(path, use_vae=True)
    with pytest.raises(ValueError, match="stores a different config .*ngf: asked 64, stored 8"):
        load_checkpoint(path, "coco")
    assert load_checkpoint(path, cfg).config == cfg
    data = torch.load(path, weights_only=True)
    torch.save({**data, "version": 99}, path)
    with pytest.raises(ValueError, match="format version 99.*upgrade gaugan-sdk"):
        load_checkpoint(path)
    torch.save({key: v for key, v in data.items() if key != "generator"}, path)
    with pytest.raises(ValueError, match="malformed gaugan-sdk checkpoint: no generator entry"):
        load_checkpoint(path)
    for key, value, said in (("generator", [1, 2], "'generator' entry is list; accepted: a state dict"),
                             ("generator", {"w": "text"}, "'generator' entry is a dict holding other things"),
                             ("encoder", 3, "'encoder' entry is int; accepted: a state dict .* or None"),
                             ("config", "coco", "'config' entry is str; accepted: a dict"),
                             ("config", {"ngf": "wide"}, "its config does not load")):
        torch.save({**data, key: value}, path)
        with pytest.raises(ValueError, match=said):
            load_checkpoint(path)


def test_save_refuses_weights_that_do_not_fit_and_writes_nothing(tmp_path):
    cfg = tiny_config("coco")
    generator, _ = trained_like(cfg)
    with pytest.raises(ValueError, match="has no style encoder"):
        save_checkpoint(tmp_path / "m.pt", cfg.replace(use_vae=True), generator)
    with pytest.raises(ValueError, match="do not fit the config"):
        save_checkpoint(tmp_path / "m.pt", cfg.replace(ngf=16), generator)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "no" / "m.pt", cfg, generator)
    with pytest.raises(TypeError, match=r"training\['rng'\]\['numpy'\]\[1\] is a ndarray"):
        save_checkpoint(tmp_path / "m.pt", cfg, generator, training={"rng": {"numpy": ("MT19937", np.zeros(3))}})
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config("coco")
    generator, _ = trained_like(cfg)
    path = save_checkpoint(tmp_path / "m.pt", cfg, generator, training={"iteration": 1})
    real_save = torch.save

    def dies_halfway(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as fh:  # leave a truncated file behind, as a kill mid-write would
            fh.truncate(100)
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, cfg, generator, training={"iteration": 2})
    monkeypatch.undo()
    assert load_checkpoint(path).training == {"iteration": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left


def test_a_full_disk_is_named_and_keeps_the_previous_checkpoint(tmp_path):
    """A 16 MiB tmpfs filled to 64 KiB free: torch.save's own error ("unexpected pos ...") becomes ENOSPC with
    the free space, the previous checkpoint stays, and no partial file is left."""
    import errno
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root with mount rights) to fill a disk")
    try:
        cfg = tiny_config("coco")
        generator, _ = trained_like(cfg)
        path = save_checkpoint(disk / "m.pt", cfg, generator, training={"iteration": 1})
        assert path.stat().st_size > 64 << 10
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(b"\0" * (free - (64 << 10)))
        with pytest.raises(OSError, match=r"no space left on the disk holding .* while writing m\.pt \(.* free "
                                          r"now\); m\.pt is unchanged") as failure:
            save_checkpoint(path, cfg, generator, training={"iteration": 2})
        assert failure.value.errno == errno.ENOSPC
        assert load_checkpoint(path).training == {"iteration": 1}
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "m.pt"]
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)  # lazy: a writer may still hold its file


def test_checkpoint_build_encoder_without_one():
    cfg = tiny_config("coco")
    with pytest.raises(ValueError, match="no style encoder"):
        Checkpoint(cfg, trained_like(cfg)[0].state_dict()).build_encoder()
