"""Label-map video through a Synthesizer: frames in, synthesized frames out, with an FPS / latency overlay.

    python samples/video_stream.py engines/city.onnx --input masks.mp4 --output out.mp4 --side-by-side
    python samples/video_stream.py engines/city.onnx --input frames/          # a folder of label PNGs, to a window
    python samples/video_stream.py engines/city.onnx --input 0                # camera 0, pointed at a painted mask

Frames are label maps. What a frame holds is decided by how it was stored, never by its pixels (a colour mask
whose colours are all gray, Cityscapes' building 70,70,70, is still colours): single-channel image files are
class ids; colour frames (RGB files, every video and camera frame) are palette masks, snapped to the nearest
palette colour (video codecs blur exact colours), unless `--masks ids` says they hold class ids as gray pixels.
Every frame is written at the video's size, its first frame's (others are resized, nearest, with a note).
Frames go through `Synthesizer.stream`; the output goes to `--output` (a video file) or to a window (press q to
stop).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gaugan_sdk import Synthesizer
from gaugan_sdk.inputs import resize_nearest
from gaugan_sdk.labels import LabelSet

IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg"}


MASKS = ("auto", "colors", "ids")  # what colour frames hold; single-channel files are always ids
_SNAP_BLOCK = 1 << 14  # (colours x classes) distances per block of the palette snapping: 128 KiB of int64


def read_frames(source: str, max_frames: int | None = None,
                skipped: list[str] | None = None) -> tuple[Iterator[tuple[str, np.ndarray]], float]:
    """(name, frame) pairs, frames (H, W) ids or (H, W, 3) RGB, from a camera index, an image folder or a video
    file; and the FPS. An image that does not decode is an error naming it, or, when `skipped` is a list, is
    skipped and described there."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}")
        from PIL import Image

        def folder() -> Iterator[tuple[str, np.ndarray]]:
            taken = 0
            for f in files:
                if max_frames is not None and taken >= max_frames:
                    return
                try:
                    with Image.open(f) as image:
                        frame = np.asarray(image if image.mode in ("L", "P", "I", "I;16") else image.convert("RGB"))
                except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
                    if skipped is None:
                        raise ValueError(f"frame {f} cannot be read: {e}; fix or remove it, or pass "
                                         f"--skip-bad-frames to skip unreadable frames with a count") from None
                    skipped.append(f"{f.name} ({e})")
                    continue
                taken += 1
                yield f"frame {f.name}", frame
        return folder(), 30.0
    import cv2

    if not source.isdigit() and not path.is_file():
        raise FileNotFoundError(f"--input {source}: no such video file, image folder or camera index")
    capture = cv2.VideoCapture(int(source) if source.isdigit() else str(path))
    if not capture.isOpened():
        raise RuntimeError(f"OpenCV cannot open {source!r} (camera index, or a video file it can decode)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    claimed = 0 if source.isdigit() else int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def video() -> Iterator[tuple[str, np.ndarray]]:
        """OpenCV's read fails alike at the end and on a frame it cannot decode: a failure before the frame
        count the file claims is a damaged frame once a later frame decodes, else an early end (a note)."""
        index, taken, failed = 0, 0, []
        try:
            while max_frames is None or taken < max_frames:
                ok, bgr = capture.read()
                if not ok:
                    if index + 1 >= claimed:
                        break
                    failed.append(index)
                    index += 1
                    continue
                if failed:
                    if skipped is None:
                        raise ValueError(f"frame {failed[0]} of {path} cannot be decoded (the file claims {claimed} "
                                         f"frames and frame {index} decodes again): a damaged video; pass "
                                         f"--skip-bad-frames to skip undecodable frames with a count")
                    skipped.extend(f"frame {i}" for i in failed)
                    failed = []
                index, taken = index + 1, taken + 1
                yield f"frame {index - 1}", bgr[..., ::-1].copy()
            if failed:
                print(f"video_stream: note: {path} claims {claimed} frames; OpenCV decoded {index - len(failed)} "
                      f"(a truncated file, or a count the container only estimates)", file=sys.stderr)
        finally:
            capture.release()
    return video(), fps


def to_label_ids(frame: np.ndarray, labels: LabelSet | None, masks: str = "auto", name: str = "frame") -> np.ndarray:
    """Label ids of one frame. Single-channel frames are ids as they are. Colour frames are palette colours
    snapped to the nearest palette colour ("auto", "colors"), or class ids stored as gray pixels ("ids")."""
    if masks not in MASKS:
        raise ValueError(f"masks={masks!r}; accepted: {', '.join(MASKS)}")
    if frame.ndim == 2:
        if masks == "colors":
            raise ValueError(f"{name} is stored single-channel (class ids), but --masks colors says frames hold "
                             f"palette colours; accepted for it: --masks auto or ids")
        return frame
    if masks == "ids":
        spread = int(np.ptp(frame.astype(np.int16), axis=-1).max())
        if spread:
            raise ValueError(f"{name} is not gray (its channels differ by up to {spread}): --masks ids takes class "
                             f"ids as gray pixels (R = G = B); palette masks take --masks colors or auto")
        return frame[..., 0]
    if labels is None:
        raise ValueError(f"{name} is a colour frame, which needs the model's palette, and the artifact does not "
                         f"record its label set: give class ids (single-channel files, or --masks ids)")
    return snap_to_palette(frame, labels.palette)


def snap_to_palette(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) ids of the nearest palette colour (the lowest id on ties). The distinct colours
    of the frame are matched, in blocks, not its pixels: memory stays a few times the frame's, whatever the
    number of classes (a (H, W, classes, 3) array was 804 MiB for a 640x360 COCO frame)."""
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    colours, where = np.unique(keys.ravel(), return_inverse=True)
    del keys
    colours = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=-1)
    palette = palette.astype(np.int64)
    square = (palette ** 2).sum(-1)
    nearest = np.empty(len(colours), dtype=np.uint8 if len(palette) <= 256 else np.int32)
    step = max(1, _SNAP_BLOCK // len(palette))
    for start in range(0, len(colours), step):
        block = colours[start:start + step]
        # |c - p|^2 = |c|^2 - 2 c.p + |p|^2, exact in int64; |c|^2 is the same for every p
        nearest[start:start + step] = (square - 2 * block @ palette.T).argmin(-1)
    return nearest[where].reshape(rgb.shape[:2])


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
    p.add_argument("--masks", choices=MASKS, default="auto",
                   help="what colour frames hold: palette colours (auto, colors) or class ids as gray pixels (ids); "
                        "single-channel image files are class ids")
    p.add_argument("--backend", default="auto", help="runtime (auto: this CPU's plan, gaugan_sdk.cpu; onnxruntime, "
                                                     "openvino, ...)")
    p.add_argument("--precision", default="auto", help="execution precision (auto: the plan's, where verified)")
    p.add_argument("--hint", choices=("latency", "throughput"), default="latency",
                   help="throughput: a few frames in flight together (OpenVINO), more frames/s, more latency")
    p.add_argument("--skip-bad-frames", action="store_true",
                   help="skip frames that do not decode, with a count (default: an error naming the frame)")
    args = p.parse_args(argv)
    import cv2

    if args.output is None and not has_gui(cv2):
        raise RuntimeError("a window needs OpenCV with a GUI, and this one is a headless build (opencv-python-headless, "
                           "what gaugan-sdk[samples] installs for servers): pip uninstall opencv-python-headless && "
                           "pip install opencv-python, or write a video with --output out.mp4")
    syn = Synthesizer(args.artifact, warmup=1, backend=args.backend, precision=args.precision, hint=args.hint)
    print(f"video_stream: {syn.chosen.label} ({syn.chosen.why})")
    skipped: list[str] | None = [] if args.skip_bad_frames else None
    frames, fps = read_frames(args.input, args.max_frames, skipped)
    ids_seen: list[np.ndarray] = []

    def label_frames() -> Iterator[np.ndarray]:
        size, noted = None, set()
        for name, frame in frames:
            if args.masks == "auto" and frame.ndim == 3 and "gray" not in noted and _all_gray(frame):
                noted.add("gray")
                print(f"video_stream: note: {name} is all gray, stored in colour: read as palette colours; if it "
                      f"holds class ids, pass --masks ids", file=sys.stderr)
            ids = to_label_ids(frame, syn.labels, args.masks, name)
            size = size or ids.shape
            if ids.shape != size:  # one video, one size: a writer drops frames of another size without a word
                if "size" not in noted:
                    noted.add("size")
                    print(f"video_stream: note: {name} is {ids.shape[1]}x{ids.shape[0]} (WxH); the video is "
                          f"{size[1]}x{size[0]}, its first frame's size: frames of other sizes are resized "
                          f"(nearest)", file=sys.stderr)
                ids = resize_nearest(ids[None], size)[0]
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
             "fps": count / sum(latencies), "output": str(args.output) if args.output else None,
             "skipped": len(skipped or [])}
    print(f"{count} frames through {syn.backend}: median {stats['median_ms']:.1f} ms/frame, "
          f"{stats['fps']:.1f} FPS (synthesis only){'; wrote ' + str(args.output) if args.output else ''}")
    if skipped:
        print(f"skipped {len(skipped)} unreadable frame(s): {'; '.join(skipped[:5])}"
              f"{' ...' if len(skipped) > 5 else ''}")
    return stats


def _all_gray(frame: np.ndarray) -> bool:
    return bool((frame[..., 0] == frame[..., 1]).all() and (frame[..., 1] == frame[..., 2]).all())


if __name__ == "__main__":
    main()
