"""Dataset readers on small trees in the real on-disk layouts (written by the tests), transforms, bad files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import tiny_config
from gaugan_sdk.labels import get_label_set
from gaugan_sdk.procedural import SceneOracle, scene_layout, scene_sample
from training.datasets import DataError, build_dataset
from training.metrics import ConfusionMatrix
from training.options import TrainOptions
from training.transforms import apply, sample_params


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _scene(seed: int, h: int, w: int, labels="cityscapes"):
    return scene_sample(seed, h, w, get_label_set(labels))


def make_cityscapes(root: Path, count: int = 3) -> None:
    for i in range(count):
        city = ["aachen", "bremen"][i % 2]
        stem = f"{city}_{i:06d}_000019"
        label, instance, image = _scene(i, 64, 128)
        _png(root / "gtFine" / "train" / city / f"{stem}_gtFine_labelIds.png", label)
        # Cityscapes instance ids: class id for stuff, class * 1000 + k for objects (16-bit PNG)
        _png(root / "gtFine" / "train" / city / f"{stem}_gtFine_instanceIds.png", instance.astype(np.uint16) + 26000)
        _png(root / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png", image)


def make_ade20k(root: Path, count: int = 3) -> None:
    for i in range(count):
        label, _, image = _scene(i, 80, 96, "ade20k")
        _png(root / "annotations" / "training" / f"ADE_train_{i:08d}.png", label)
        _png(root / "images" / "training" / f"ADE_train_{i:08d}.jpg", image)


def make_coco(root: Path, count: int = 3) -> None:
    for i in range(count):
        label, instance, image = _scene(i, 80, 96, "coco")
        label[:3, :3] = 255  # unlabeled
        _png(root / "train_label" / f"{i:012d}.png", label)
        _png(root / "train_inst" / f"{i:012d}.png", instance.astype(np.uint8))
        _png(root / "train_img" / f"{i:012d}.jpg", image)


def make_custom(root: Path, count: int = 3, instances: bool = True) -> None:
    for i in range(count):
        label, instance, image = _scene(i, 64, 64, "procedural")
        _png(root / "labels" / f"s{i}.png", label)
        _png(root / "images" / f"s{i}.jpg", image)
        if instances:
            _png(root / "inst" / f"s{i}.png", instance.astype(np.uint8))


LAYOUTS = {
    "cityscapes": (make_cityscapes, dict(load_size=64), dict(crop_size=128)),
    "ade20k": (make_ade20k, dict(load_size=72), dict(crop_size=64)),
    "coco": (make_coco, dict(load_size=72), dict(crop_size=64)),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_reader_on_the_real_layout(name, tmp_path):
    make, data_opts, model = LAYOUTS[name]
    make(tmp_path)
    cfg = tiny_config(name, **model)
    opts = TrainOptions(dataset=name, dataroot=str(tmp_path), model=cfg.to_dict() | {"label_set": cfg.label_set},
                        **data_opts).resolved()
    ds = build_dataset(opts, opts.generator_config())
    assert len(ds) == 3
    sample = ds[1]
    h, w = cfg.image_size
    assert sample["label"].shape == (1, h, w) and sample["label"].dtype == torch.int64
    assert sample["instance"].shape == (1, h, w) and sample["image"].shape == (3, h, w)
    assert -1 <= sample["image"].min() and sample["image"].max() <= 1
    ids = set(torch.unique(sample["label"]).tolist())
    allowed = set(range(cfg.num_label_channels)) | ({255} if cfg.contain_dontcare_label else set())
    assert ids <= allowed and len(ids) >= 3
    if cfg.use_instance:
        assert len(torch.unique(sample["instance"])) >= 3


def test_custom_folders_pair_by_stem_and_instances_follow_the_folder(tmp_path):
    make_custom(tmp_path)
    base = dict(dataset="custom", label_dir=str(tmp_path / "labels"), image_dir=str(tmp_path / "images"),
                load_size=64, model=dict(crop_size=64, label_nc=8, ngf=8, spade_hidden=16))
    with_inst = TrainOptions(**base, instance_dir=str(tmp_path / "inst")).resolved()
    assert with_inst.generator_config().use_instance
    assert not TrainOptions(**base).resolved().generator_config().use_instance  # the reference crashes there
    ds = build_dataset(with_inst, with_inst.generator_config())
    assert [p.label.stem for p in ds.pairs] == ["s0", "s1", "s2"] == [p.image.stem for p in ds.pairs]
    assert ds[0]["image"].shape == (3, 64, 64)


def test_unpaired_files_name_the_file_or_are_skipped_with_a_count(tmp_path):
    make_custom(tmp_path, instances=False)
    _png(tmp_path / "labels" / "lonely.png", np.zeros((64, 64), np.uint8))
    opts = dict(dataset="custom", label_dir=str(tmp_path / "labels"), image_dir=str(tmp_path / "images"),
                model=dict(crop_size=64, label_nc=8), load_size=64)
    with pytest.raises(DataError, match=r"lonely\.png has no image.*--skip-bad"):
        build_dataset(TrainOptions(**opts).resolved(), TrainOptions(**opts).resolved().generator_config())
    resolved = TrainOptions(**opts, skip_bad=True).resolved()
    with pytest.warns(UserWarning, match=r"1 file\(s\) without a partner.*lonely"):
        ds = build_dataset(resolved, resolved.generator_config())
    assert len(ds) == 3


def test_bad_ids_and_unreadable_files_name_the_file(tmp_path, capsys):
    """Unreadable files are found by the scan at start; ids out of range by --check-data at start, else when
    the sample loads. Every error names the file; --skip-bad skips with a count."""
    make_custom(tmp_path, count=4, instances=False)
    _png(tmp_path / "labels" / "s1.png", np.full((64, 64), 40, np.uint8))  # ids 0..7 only
    (tmp_path / "images" / "s2.jpg").write_bytes(b"not a jpeg at all")
    opts = TrainOptions(dataset="custom", label_dir=str(tmp_path / "labels"), image_dir=str(tmp_path / "images"),
                        model=dict(crop_size=64, label_nc=8), load_size=64).resolved()
    with pytest.raises(DataError, match=r"1 bad sample\(s\).*cannot read image .*s2\.jpg.*--skip-bad"):
        build_dataset(opts, opts.generator_config())
    skip = opts.__class__(**{**opts.to_dict(), "skip_bad": True})
    with pytest.warns(UserWarning, match=r"skipping 1 bad sample\(s\).*s2\.jpg"):
        ds = build_dataset(skip, opts.generator_config(), report=True)
    assert "data: checked 4 pairs (headers" in capsys.readouterr().err
    assert [p.label.name for p in ds.pairs] == ["s0.png", "s1.png", "s3.png"]
    with pytest.warns(UserWarning, match=r"skipping a bad sample \(1 so far\).*s1\.png"):  # found on load
        sample = ds[1]
    assert sample["index"] == 2 and ds.skipped == {1}
    checked = opts.__class__(**{**skip.to_dict(), "check_data": True})
    with pytest.warns(UserWarning, match=r"skipping 2 bad sample\(s\).*s1\.png: label id\(s\) out of range.*40"):
        assert len(build_dataset(checked, opts.generator_config())) == 2


def test_duplicate_stems_subfolders_and_bombs_are_found_at_start(tmp_path):
    make_custom(tmp_path, count=3, instances=False)
    _png(tmp_path / "images" / "s0.png", np.zeros((64, 64, 3), np.uint8))  # s0.jpg and s0.png: which one?
    _png(tmp_path / "labels" / "city" / "s1.png", np.zeros((64, 64), np.uint8))  # a subfolder pairs by its path
    _png(tmp_path / "images" / "city" / "s1.jpg", np.zeros((64, 64, 3), np.uint8))
    bomb = _png(tmp_path / "labels" / "s2.png", np.zeros((8, 8), np.uint8))  # its header claims 30000x30000
    data = bytearray(bomb.read_bytes())
    data[16:24] = struct.pack(">II", 30000, 30000)  # IHDR width, height, then the chunk's CRC
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    bomb.write_bytes(bytes(data))
    opts = dict(dataset="custom", label_dir=str(tmp_path / "labels"), image_dir=str(tmp_path / "images"),
                model=dict(crop_size=64, label_nc=8), load_size=64)
    strict = TrainOptions(**opts).resolved()
    with pytest.raises(DataError, match=r"2 files for 's0' \(.*s0\.jpg, .*s0\.png\); keep one"):
        build_dataset(strict, strict.generator_config())
    skip = TrainOptions(**opts, skip_bad=True).resolved()
    with pytest.warns(UserWarning) as caught:
        ds = build_dataset(skip, skip.generator_config())
    said = " ".join(str(w.message) for w in caught)
    assert "s2.png is refused as a decompression bomb" in said and "files for 's0'" in said
    assert [p.label.relative_to(tmp_path / "labels").as_posix() for p in ds.pairs] == ["city/s1.png", "s1.png"]
    assert [p.image.relative_to(tmp_path / "images").as_posix() for p in ds.pairs] == ["city/s1.jpg", "s1.jpg"]


def test_colour_masks_are_refused_with_the_reason(tmp_path):
    make_custom(tmp_path, count=1, instances=False)
    label = np.asarray(Image.open(tmp_path / "labels" / "s0.png"))
    _png(tmp_path / "labels" / "s0.png", get_label_set("procedural").colorize(label))
    opts = TrainOptions(dataset="custom", label_dir=str(tmp_path / "labels"), image_dir=str(tmp_path / "images"),
                        model=dict(crop_size=64, label_nc=8), load_size=64).resolved()
    with pytest.raises(DataError, match="RGB; label maps must be single-channel"):
        build_dataset(opts, opts.generator_config())  # found by the scan, before training


def test_truncated_and_damaged_images_are_found_before_training(tmp_path):
    """Was: a truncated image passed the header scan and --check-data (which decoded label maps only) and
    failed when its sample loaded, hours in. Truncation is found by the header scan (the file's end checked, a
    file that does not end as its format does is decoded); damage inside intact files by --check-data, which now
    decodes every image and instance map."""
    make_custom(tmp_path, count=4)
    image = tmp_path / "images" / "s1.jpg"
    image.write_bytes(image.read_bytes()[:len(image.read_bytes()) // 2])
    instance = tmp_path / "inst" / "s2.png"
    instance.write_bytes(instance.read_bytes()[:len(instance.read_bytes()) // 2])
    damaged = _png(tmp_path / "images" / "s3.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    (tmp_path / "images" / "s3.jpg").unlink()
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2:len(data) // 2 + 40] = bytes(b ^ 0xFF for b in data[len(data) // 2:len(data) // 2 + 40])
    damaged.write_bytes(bytes(data))  # its IEND intact: only decoding finds it
    base = dict(dataset="custom", label_dir=str(tmp_path / "labels"), image_dir=str(tmp_path / "images"),
                instance_dir=str(tmp_path / "inst"), model=dict(crop_size=64, label_nc=8), load_size=64)
    headers = TrainOptions(**base, skip_bad=True).resolved()
    with pytest.warns(UserWarning) as caught:
        ds = build_dataset(headers, headers.generator_config())
    said = " ".join(str(w.message) for w in caught)
    assert "skipping 2 bad sample(s)" in said and "s1.jpg: image file is truncated" in said
    assert "instance map " in said and "s2.png" in said and [p.label.name for p in ds.pairs] == ["s0.png", "s3.png"]
    checked = TrainOptions(**base, check_data=True).resolved()
    with pytest.raises(DataError, match=r"3 bad sample\(s\).*s1\.jpg.*s2\.png.*cannot read image .*s3\.png"):
        build_dataset(checked, checked.generator_config(), report=True)


def test_max_samples_and_a_missing_folder(tmp_path):
    make_ade20k(tmp_path)
    opts = TrainOptions(dataset="ade20k", dataroot=str(tmp_path), max_samples=2, load_size=72,
                        model=dict(crop_size=64)).resolved()
    assert len(build_dataset(opts, opts.generator_config())) == 2
    with pytest.raises(FileNotFoundError, match="validation"):
        build_dataset(opts, opts.generator_config(), phase="val")


def test_transforms_move_label_and_image_together(rng):
    # a label map and an image with the same pattern: after resize + crop + flip they must still line up
    ids = np.zeros((100, 160), np.uint8)
    ids[:, 40:60] = 1
    ids[30:50, :] = 2
    image = np.stack([ids * 100] * 3, axis=-1).astype(np.uint8)
    for seed in range(6):
        params = sample_params("resize_and_crop", 96, 64, 1.0, (160, 100), np.random.default_rng(seed), flip=True)
        lab = np.asarray(apply(Image.fromarray(ids), params, Image.NEAREST))
        img = np.asarray(apply(Image.fromarray(image), params, Image.BICUBIC))[..., 0]
        assert lab.shape == img.shape == (64, 64)
        inner = (lab == np.roll(lab, 1, 0)) & (lab == np.roll(lab, -1, 0)) & (lab == np.roll(lab, 1, 1)) & \
            (lab == np.roll(lab, -1, 1))
        assert np.abs(img[inner].astype(int) - lab[inner] * 100).max() <= 2
    fixed = sample_params("fixed", 512, 64, 2.0, (160, 100), rng, flip=False)
    assert fixed.resize == (64, 32) and fixed.crop is None
    with pytest.raises(ValueError, match="smaller than crop_size=64"):
        sample_params("resize_and_crop", 32, 64, 1.0, (160, 100), rng, flip=False)


def test_procedural_dataset_is_deterministic_and_held_out_scenes_differ():
    cfg = tiny_config("cityscapes").replace(label_set="procedural", label_nc=8, crop_size=64,
                                            num_upsampling_layers="normal")
    opts = TrainOptions(model=cfg.to_dict(), procedural_scenes=10, eval_samples=4).resolved()
    train, held_out = build_dataset(opts, cfg), build_dataset(opts, cfg, train=False)
    assert len(train) == 10 and len(held_out) == 4
    a, b = train[3], train[3]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(train[0]["label"], held_out[0]["label"])


def test_oracle_segments_rendered_scenes_and_not_noise():
    labels = get_label_set("procedural")
    oracle = SceneOracle.fit(labels, 64, 128)
    scenes = [scene_sample(500 + i, 64, 128, labels) for i in range(6)]
    target = np.stack([s[0] for s in scenes])
    real = ConfusionMatrix(len(labels))
    real.update(target, oracle.segment(np.stack([s[2] for s in scenes])))
    flat = ConfusionMatrix(len(labels))
    flat.update(target, oracle.segment(np.full((6, 64, 128, 3), 128, np.uint8)))
    print(f"oracle mIoU: rendered scenes {real.mean_iou():.3f}, flat gray {flat.mean_iou():.3f}")
    assert real.mean_iou() > 0.75 and real.accuracy() > 0.9
    assert flat.mean_iou() < 0.15
    # the same seed, the same scene; in a label set without some classes the scene uses the ones it has
    a, b = scene_sample(3, 32, 64, labels), scene_sample(3, 32, 64, labels)
    assert all((x == y).all() for x, y in zip(a, b))
    city, _ = scene_layout(3, 32, 64, get_label_set("cityscapes"))
    assert set(np.unique(city)) <= {get_label_set("cityscapes").id_of(n) for n in
                                    ("sky", "terrain", "vegetation", "road", "building", "car")}
