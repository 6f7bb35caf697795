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
    assert "6 frames through onnxruntime" in capsys.readouterr().out
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
    assert all((a == b).all() for a, b in zip(frames, ids))
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
