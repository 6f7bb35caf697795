"""Label-map video through a Synthesizer: frames in, synthesized frames out, with an FPS / latency overlay.

    python samples/video_stream.py engines/city.onnx --input masks.mp4 --output out.mp4 --side-by-side
    python samples/video_stream.py engines/city.onnx --input frames/          # a folder of label PNGs, to a window
    python samples/video_stream.py engines/city.onnx --input 0                # camera 0, pointed at a painted mask

Frames are label maps: single-channel (or gray) frames are class ids; colour frames are palette masks, snapped
to the nearest palette colour (video codecs blur exact colours). Frames go through `Synthesizer.stream`; the
output goes to `--output` (a video file) or to a window (press q to stop).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gaugan_sdk import Synthesizer
from gaugan_sdk.labels import LabelSet

IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg"}


def read_frames(source: str, max_frames: int | None = None) -> tuple[Iterator[np.ndarray], float]:
    """Frames (H, W) ids or (H, W, 3) RGB from a camera index, an image folder or a video file; and the FPS."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}")
        from PIL import Image

        def folder() -> Iterator[np.ndarray]:
            for f in files[:max_frames]:
                image = Image.open(f)
                yield np.asarray(image if image.mode in ("L", "P", "I", "I;16") else image.convert("RGB"))
        return folder(), 30.0
    import cv2

    if not source.isdigit() and not path.is_file():
        raise FileNotFoundError(f"--input {source}: no such video file, image folder or camera index")
    capture = cv2.VideoCapture(int(source) if source.isdigit() else str(path))
    if not capture.isOpened():
        raise RuntimeError(f"OpenCV cannot open {source!r} (camera index, or a video file it can decode)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0

    def video() -> Iterator[np.ndarray]:
        count = 0
        try:
            while max_frames is None or count < max_frames:
                ok, bgr = capture.read()
                if not ok:
                    return
                count += 1
                yield bgr[..., ::-1].copy()
        finally:
            capture.release()
    return video(), fps


def to_label_ids(frame: np.ndarray, labels: LabelSet) -> np.ndarray:
    """ids as they are; gray RGB frames as ids; colour frames snapped to the nearest palette colour."""
    if frame.ndim == 2:
        return frame
    if (frame[..., 0] == frame[..., 1]).all() and (frame[..., 1] == frame[..., 2]).all():
        return frame[..., 0]
    palette = labels.palette.astype(np.int32)
    distance = ((frame[..., None, :].astype(np.int32) - palette) ** 2).sum(-1)
    return distance.argmin(-1).astype(np.uint8)


def overlay(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = np.ascontiguousarray(image)
    scale = max(0.35, out.shape[0] / 480)
    cv2.putText(out, text, (6, int(18 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, int(18 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return out


def has_gui(cv2) -> bool:
    """Whether this OpenCV build can open windows (headless builds report "GUI: NONE")."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return bool(match) and match.group(1).upper() != "NONE"


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}; accepted: a whole number >= 1")
    return int(text)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifact", help="an exported artifact (.onnx, .plan, .pt2) or a checkpoint")
    p.add_argument("--input", required=True, help="video file, folder of label images, or camera index")
    p.add_argument("--output", type=Path, help="write a video here (mp4v) instead of opening a window")
    p.add_argument("--side-by-side", action="store_true", help="mask (palette colours) | image")
    p.add_argument("--no-overlay", action="store_true", help="no FPS / latency text")
    p.add_argument("--max-frames", type=_positive, help="stop after this many frames (default: all)")
    p.add_argument("--seed", type=int, default=0, help="style seed for models with a style path")
    args = p.parse_args(argv)
    import cv2

    if args.output is None and not has_gui(cv2):
        raise RuntimeError("a window needs OpenCV with a GUI, and this one is a headless build (opencv-python-headless, "
                           "what gaugan-sdk[samples] installs for servers): pip uninstall opencv-python-headless && "
                           "pip install opencv-python, or write a video with --output out.mp4")
    syn = Synthesizer(args.artifact, warmup=1)
    frames, fps = read_frames(args.input, args.max_frames)
    ids_seen: list[np.ndarray] = []

    def label_frames() -> Iterator[np.ndarray]:
        for frame in frames:
            ids = to_label_ids(frame, syn.labels)
            ids_seen.append(ids)
            yield ids

    writer, latencies, count = None, [], 0
    stream = syn.stream(label_frames(), seed=args.seed if syn.config.use_vae else None)
    try:
        while True:
            start = time.perf_counter()
            try:
                image = next(stream)
            except StopIteration:
                break
            latencies.append(time.perf_counter() - start)
            ids = ids_seen.pop()
            if args.side_by_side:
                image = np.concatenate([syn.labels.colorize(ids), image], axis=1)
            if not args.no_overlay:
                recent = latencies[-30:]
                image = overlay(image, f"{1 / statistics.mean(recent):5.1f} FPS | {1000 * recent[-1]:6.1f} ms")
            bgr = np.ascontiguousarray(image[..., ::-1])
            if args.output is not None:
                if writer is None:
                    writer = cv2.VideoWriter(str(args.output), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (bgr.shape[1], bgr.shape[0]))
                    if not writer.isOpened():
                        raise RuntimeError(f"OpenCV cannot write {args.output} (mp4v)")
                writer.write(bgr)
            else:
                cv2.imshow(f"gaugan-sdk: {syn.path.name}", bgr)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            count += 1
    finally:
        if writer is not None:
            writer.release()
        if args.output is None:
            cv2.destroyAllWindows()
        syn.close()
    if not count:
        raise RuntimeError(f"no frames read from {args.input}")
    stats = {"frames": count, "median_ms": 1000 * statistics.median(latencies),
             "fps": count / sum(latencies), "output": str(args.output) if args.output else None}
    print(f"{count} frames through {syn.backend}: median {stats['median_ms']:.1f} ms/frame, "
          f"{stats['fps']:.1f} FPS (synthesis only){'; wrote ' + str(args.output) if args.output else ''}")
    return stats


if __name__ == "__main__":
    main()
