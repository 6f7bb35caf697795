"""The samples as a user runs them: the video-stream script headless on a mask video written here, and the
quickstart main job end to end with a few training iterations."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import tiny_config
from export.to_onnx import export_generator
from gaugan_sdk import Synthesizer
from gaugan_sdk.contract import Shapes
from gaugan_sdk.labels import get_label_set
from gaugan_sdk.metadata import write_sidecar
from gaugan_sdk.procedural import scene_batch
from helpers import realistic_generator

cv2 = pytest.importorskip("cv2", reason="the video sample needs OpenCV (pip install 'gaugan-sdk[samples]')")
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _sample(name: str):
    sys.path.insert(0, str(SAMPLES))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    cfg = tiny_config("cityscapes").replace(label_set="procedural", label_nc=8)
    folder = tmp_path_factory.mktemp("video")
    path = folder / "procedural.onnx"
    write_sidecar(path, export_generator(realistic_generator(cfg), path, Shapes(batch=(1, 1, 2))))
    return path


def _frames(count: int = 6) -> np.ndarray:
    labels, _ = scene_batch(7, count, 64, 128, get_label_set("procedural"))
    return labels


def _read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def test_video_stream_runs_headless_on_a_palette_mask_video(artifact, tmp_path, capsys):
    ids = _frames(6)
    source = tmp_path / "masks.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 10, (128, 64))
    for frame in get_label_set("procedural").colorize(ids):
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    video_stream = _sample("video_stream")
    out = tmp_path / "out.mp4"
    stats = video_stream.main([str(artifact), "--input", str(source), "--output", str(out), "--side-by-side"])
    frames = _read_video(out)
    assert stats["frames"] == 6 and len(frames) == 6
    assert frames[0].shape == (64, 256, 3)  # mask | image
    assert f"6 frames through {Synthesizer(artifact).backend}" in capsys.readouterr().out  # this CPU's plan
    # the codec blurred the palette colours: snapping to the nearest colour still recovers most ids
    decoded = video_stream.to_label_ids(_read_video(source)[0][..., ::-1], get_label_set("procedural"))
    assert (decoded == ids[0]).mean() > 0.95


def test_video_stream_reads_a_folder_of_id_pngs_exactly(artifact, tmp_path):
    ids = _frames(3)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(ids):
        Image.fromarray(frame).save(folder / f"{i:04d}.png")
    video_stream = _sample("video_stream")
    frames, _ = video_stream.read_frames(str(folder))
    assert all((a == b).all() for (_, a), b in zip(frames, ids))
    out = tmp_path / "out.mp4"
    stats = video_stream.main([str(artifact), "--input", str(folder), "--output", str(out), "--no-overlay"])
    assert stats["frames"] == 3 and _read_video(out)[0].shape == (64, 128, 3)
    with pytest.raises(FileNotFoundError, match="no such video file, image folder or camera index"):
        video_stream.main([str(artifact), "--input", str(tmp_path / "missing.mp4"), "--output", str(out)])
    for bad in ("-1", "0", "2.5"):  # was: -1 silently dropped the last frame
        with pytest.raises(SystemExit):
            video_stream.main([str(artifact), "--input", str(folder), "--max-frames", bad])
    assert video_stream.main([str(artifact), "--input", str(folder), "--output", str(out), "--max-frames", "2",
                              "--no-overlay"])["frames"] == 2
    import cv2

    if not video_stream.has_gui(cv2):  # a window on a headless OpenCV: said before any work, with the fix
        with pytest.raises(RuntimeError, match="headless build .* pip install opencv-python"):
            video_stream.main([str(artifact), "--input", str(folder)])


def test_video_stream_writes_every_frame_of_a_folder_of_mixed_sizes_at_the_videos_size(artifact, tmp_path, capsys):
    """Was: the writer silently dropped the frames of another size (the summary said 4, the file held 2)."""
    ids = _frames(4)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(ids):
        Image.fromarray(frame if i % 2 == 0 else frame[::2, ::2]).save(folder / f"{i:04d}.png")
    out = tmp_path / "out.mp4"
    stats = _sample("video_stream").main([str(artifact), "--input", str(folder), "--output", str(out), "--no-overlay"])
    frames = _read_video(out)
    assert stats["frames"] == 4 and len(frames) == 4 and {f.shape for f in frames} == {(64, 128, 3)}
    assert "0001.png is 64x32 (WxH); the video is 128x64, its first frame's size: frames of other sizes are " \
           "resized (nearest)" in capsys.readouterr().err


def test_gray_palette_colours_are_colours_and_ids_are_decided_by_how_frames_are_stored(artifact, tmp_path, capsys):
    """Was: a colour frame whose colours were all gray (Cityscapes building 70,70,70) was read as ids (70: out
    of range). Single-channel files are ids; colour frames are palette colours unless --masks ids says they hold
    gray ids; an all-gray colour frame under auto is said to be ambiguous."""
    video_stream = _sample("video_stream")
    city = get_label_set("cityscapes")
    building = np.broadcast_to(city.palette[city.id_of("building")], (8, 8, 3))
    assert (video_stream.to_label_ids(building, city) == city.id_of("building")).all()
    gray_ids = np.stack([np.full((8, 8), 7, np.uint8)] * 3, axis=-1)
    assert (video_stream.to_label_ids(gray_ids, city, "ids") == 7).all()
    with pytest.raises(ValueError, match=r"frame f\.png is not gray .*--masks ids takes class ids as gray pixels"):
        video_stream.to_label_ids(city.colorize(np.full((8, 8), 7)), city, "ids", "frame f.png")
    with pytest.raises(ValueError, match=r"frame f\.png is stored single-channel .* --masks colors"):
        video_stream.to_label_ids(np.zeros((8, 8), np.uint8), city, "colors", "frame f.png")
    ids = _frames(2)
    folder = tmp_path / "gray"
    folder.mkdir()
    for i, frame in enumerate(ids):  # class ids saved as gray RGB PNGs
        Image.fromarray(np.stack([frame] * 3, axis=-1)).save(folder / f"{i:04d}.png")
    out = tmp_path / "out.mp4"
    video_stream.main([str(artifact), "--input", str(folder), "--output", str(out), "--no-overlay"])
    assert "0000.png is all gray, stored in colour: read as palette colours; if it holds class ids, pass " \
           "--masks ids" in capsys.readouterr().err
    stats = video_stream.main([str(artifact), "--input", str(folder), "--output", str(out), "--no-overlay",
                               "--masks", "ids", "--side-by-side"])
    assert stats["frames"] == 2 and "all gray" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        video_stream.main([str(artifact), "--input", str(folder), "--masks", "rgb"])


def test_palette_snapping_memory_is_bounded_and_picks_the_nearest_colour():
    """Was: a (H, W, classes, 3) int32 distance array: 72 MiB for a 128x256 COCO frame (804 MiB at 640x360)."""
    import tracemalloc

    video_stream = _sample("video_stream")
    coco = get_label_set("coco")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(coco), (128, 256))
    blurred = np.clip(coco.colorize(ids).astype(int) + rng.integers(-6, 7, (128, 256, 3)), 0, 255).astype(np.uint8)
    tracemalloc.start()
    snapped = video_stream.to_label_ids(blurred, coco)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"128x256 COCO frame: {blurred.nbytes / 2**10:.0f} KiB, snapping peak {peak / 2**10:.0f} KiB")
    assert peak < 20 * blurred.nbytes  # all-distinct colours, the worst case: about 14x
    small = blurred[:16, :16].astype(np.int64)  # the brute-force nearest colour, lowest id on ties
    brute = ((small[:, :, None] - coco.palette.astype(np.int64)) ** 2).sum(-1).argmin(-1)
    np.testing.assert_array_equal(snapped[:16, :16], brute)


def test_a_corrupt_frame_is_named_or_skipped_with_a_count(artifact, tmp_path, capsys, monkeypatch):
    ids = _frames(3)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(ids):
        Image.fromarray(frame).save(folder / f"{i:04d}.png")
    broken = folder / "0001.png"
    broken.write_bytes(broken.read_bytes()[:60])  # truncated mid-data
    video_stream = _sample("video_stream")
    out = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match=r"frame .*0001\.png cannot be read: .*--skip-bad-frames"):
        video_stream.main([str(artifact), "--input", str(folder), "--output", str(out), "--no-overlay"])
    stats = video_stream.main([str(artifact), "--input", str(folder), "--output", str(out), "--no-overlay",
                               "--skip-bad-frames"])
    assert stats["frames"] == 2 and stats["skipped"] == 1 and len(_read_video(out)) == 2
    assert "skipped 1 unreadable frame(s): " in capsys.readouterr().out
    # a video file: OpenCV's read fails alike on a damaged frame and at the end; a later frame that decodes tells
    # them apart (a stand-in capture: how a codec conceals damage varies with the FFmpeg build)
    colours = get_label_set("procedural").colorize(ids)[..., ::-1]

    class Damaged:
        def __init__(self, source):
            self.reads = iter([colours[0], None, colours[2]])

        def isOpened(self):  # noqa: N802 (OpenCV's names)
            return True

        def get(self, prop):
            return 3 if prop == cv2.CAP_PROP_FRAME_COUNT else 10

        def read(self):
            frame = next(self.reads, None)
            return frame is not None, frame

        def release(self):
            pass

    source = tmp_path / "masks.mp4"
    source.write_bytes(b"")
    monkeypatch.setattr(cv2, "VideoCapture", Damaged)
    with pytest.raises(ValueError, match=r"frame 1 of .*masks\.mp4 cannot be decoded \(the file claims 3 frames"):
        video_stream.main([str(artifact), "--input", str(source), "--output", str(out), "--no-overlay"])
    stats = video_stream.main([str(artifact), "--input", str(source), "--output", str(out), "--no-overlay",
                               "--skip-bad-frames"])
    assert stats["frames"] == 2 and stats["skipped"] == 1


def test_quickstart_main_job_end_to_end(tmp_path, capsys):
    torch.manual_seed(0)
    summary = _sample("quickstart").main(["--iters", "4", "--samples", "8", "--outdir", str(tmp_path),
                                          "--device", "cpu"])
    printed = capsys.readouterr().out
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == tmp_path and (run_dir / "summary.json").is_file()
    grid = np.asarray(Image.open(summary["grid"]))
    assert grid.shape == (8 * 64, 3 * 128, 3)
    assert set(summary["oracle_mIoU"]) == {"generated", "scene renderings (ceiling)", "flat gray (floor)"}
    assert summary["oracle_mIoU"]["scene renderings (ceiling)"] > 0.6
    backends = {(r["artifact"], r["batch"]) for r in summary["latency"]["rows"]}
    assert backends == {(n, b) for n in ("quickstart_fp32.onnx", "quickstart_fp16.onnx", "iter_0000004.pt")
                        for b in (1, 8)}
    assert "[4/4] oracle mIoU" in printed and "next: Synthesizer(" in printed
