"""Hostile inputs beyond those the test suite asserts one by one (issue 17's own cases have tests): each prints
CLEAR (an error naming the value and what is accepted), UNCLEAR (a raw library exception), OK (accepted, and
right to be) or WRONG. Run from the repository root: `python tests/hostile_cases.py` (about two minutes)."""
import json, shutil, sys, tempfile, warnings
from pathlib import Path
import numpy as np
import torch
sys.path.insert(0, "tests")
from helpers import tiny_config
from helpers import realistic_generator
from gaugan_sdk import Synthesizer
from gaugan_sdk.checkpoint import save_checkpoint
from gaugan_sdk.models import ConvEncoder
from export import export_checkpoint
warnings.simplefilter("ignore")
T = Path(tempfile.mkdtemp(prefix="gaugan-hostile-"))
cfg = tiny_config("cityscapes"); save_checkpoint(T / "city.pt", cfg, realistic_generator(cfg))
vcfg = tiny_config("coco", use_vae=True); save_checkpoint(T / "coco.pt", vcfg, realistic_generator(vcfg), ConvEncoder(vcfg).eval())
export_checkpoint(T / "city.pt", format="onnx", output=T / "city.onnx", calib_count=1, verbose=False, verify=False)
export_checkpoint(T / "coco.pt", format="onnx", output=T / "coco.onnx", calib_count=1, verbose=False, verify=False)
OURS = (ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError, PermissionError, OSError)
results = []
def case(name, fn, expect_error=True):
    try:
        fn()
        results.append(("WRONG" if expect_error else "OK", name, "accepted"))
    except OURS as e:
        msg = str(e).splitlines()[0][:150]
        kind = "CLEAR" if expect_error else "WRONG"
        results.append((kind, name, f"{type(e).__name__}: {msg}"))
    except Exception as e:
        results.append(("UNCLEAR", name, f"{type(e).__name__}: {str(e)[:150]}"))
syn = Synthesizer(T / "city.onnx"); vae = Synthesizer(T / "coco.onnx")
lab = np.zeros((64, 128), np.uint8)
case("Synthesizer(None)", lambda: Synthesizer(None))
case("Synthesizer(123)", lambda: Synthesizer(123))
(T / "dir.onnx").mkdir()
case("artifact path is a folder", lambda: Synthesizer(T / "dir.onnx"))
(T / "empty.onnx").write_bytes(b"")
case("empty ONNX file", lambda: Synthesizer(T / "empty.onnx"))
for label, text in (("invalid JSON sidecar", "{"), ("sidecar is a list", "[]"), ("sidecar schema 99", None), ("sidecar missing keys", '{"schema_version": 3}')):
    p = T / f"s{len(results)}.onnx"; shutil.copy(T / "city.onnx", p)
    if text is None:
        d = json.loads(Path(f"{T}/city.onnx.json").read_text()); d["schema_version"] = 99; text = json.dumps(d)
    Path(f"{p}.json").write_text(text)
    case(label, lambda p=p: Synthesizer(p))
case("device='gpu'", lambda: Synthesizer(T / "city.onnx", device="gpu"))
case("providers=['Nope']", lambda: Synthesizer(T / "city.onnx", providers=["NopeExecutionProvider"]))
case("labels='nope'", lambda: Synthesizer(T / "city.onnx", labels="nope"))
case("run(None)", lambda: syn.run(None))
case("run('abc')", lambda: syn.run("abc"))
case("run(0-d)", lambda: syn.run(np.uint8(3)))
case("run((0, 64))", lambda: syn.run(np.zeros((0, 64), np.uint8)))
case("run(list of lists)", lambda: syn.run([[1, 2], [3, 4]]), expect_error=False)
case("run(object array)", lambda: syn.run(np.array([[None]])))
case("instance (2,H,W) for one map", lambda: syn.run(lab, np.zeros((2, 64, 128), np.int32)))
case("instance bool", lambda: syn.run(lab, np.zeros((64, 128), bool)))
case("instance negative ids", lambda: syn.run(lab, np.full((64, 128), -5, np.int64)), expect_error=False)
case("huge batch over limit", lambda: syn.run(np.broadcast_to(lab, (10000, 64, 128))))
case("style=PIL image", lambda: vae.run(np.zeros((64, 64), np.uint8), style=__import__("PIL.Image").Image.new("RGB", (64, 64))), expect_error=False)
case("style=list of ints", lambda: vae.run(np.zeros((64, 64), np.uint8), style=[1, 2, 3]))
case("style=None encode", lambda: vae.encode(None))
case("style 1x1 px", lambda: vae.run(np.zeros((64, 64), np.uint8), style=np.zeros((1, 1, 3), np.uint8)))
case("seed=np.int64(5)", lambda: vae.run(np.zeros((64, 64), np.uint8), seed=np.int64(5)), expect_error=False)
case("seed=2**70", lambda: vae.run(np.zeros((64, 64), np.uint8), seed=2**70), expect_error=False)
case("seed=np.array([1,2])", lambda: vae.run(np.zeros((64, 64), np.uint8), seed=np.array([1, 2])), expect_error=False)
case("seed=set", lambda: vae.run(np.zeros((64, 64), np.uint8), seed={1, 2}))
case("resize='no'", lambda: Synthesizer(T / "city.onnx", resize="no"))
case("int8_mode on fp32", lambda: Synthesizer(T / "city.onnx", int8_mode="fused"), expect_error=False)
case("max_pixels=0", lambda: Synthesizer(T / "city.onnx", max_pixels=0))
case("device_output + resize", lambda: syn.run(np.zeros((32, 32), np.uint8), device_output=True))
# third pass: the runtime
small = Synthesizer(T / "coco.onnx", max_pixels=64 * 64)
case("10 seeds, one map, over max_pixels", lambda: small.run(np.zeros((64, 64), np.uint8), seed=list(range(10))))
case("10 style images over max_pixels", lambda: small.run(np.zeros((64, 64), np.uint8), style=np.zeros((10, 32, 32, 3), np.uint8)))
case("encoder opened as a generator", lambda: Synthesizer(T / "coco_encoder.onnx"))
case("RGBA mask", lambda: syn.run(np.zeros((64, 128, 4), np.uint8)))
case("(N, H, 3) uint8 ids", lambda: syn.run(np.full((4, 64, 3), 7, np.uint8)))
case("providers as a string", lambda: Synthesizer(T / "city.onnx", providers="CPUExecutionProvider"))
if not torch.cuda.is_available():
    case("device='cuda', CPU-only torch", lambda: Synthesizer(T / "city.pt", device="cuda"))
case("ragged style list", lambda: vae.run(np.zeros((64, 64), np.uint8), style=[np.zeros((64, 64, 3), np.uint8), np.zeros((32, 48, 3), np.uint8)]))
import onnx
bare = onnx.load(str(T / "city.onnx")); del bare.metadata_props[:]; onnx.save(bare, str(T / "bare.onnx"))
case("labels wider than a metadata-less model", lambda: Synthesizer(T / "bare.onnx", labels="ade20k"))
from gaugan_sdk.checkpoint import load_checkpoint
torch.save(torch.nn.Linear(2, 2), T / "module.pt"); (T / "plain.pt").write_bytes(__import__("pickle").dumps({"a": 1}))
for name in ("module.pt", "plain.pt"):
    case(f"checkpoint: {name} (not a checkpoint)", lambda name=name: load_checkpoint(T / name, "cityscapes"))
import contextlib, io as _io
def exits_2(fn):  # a command line that answers on stderr with status 2: its first line as the error
    err = _io.StringIO()
    with contextlib.redirect_stderr(err):
        code = fn()
    if code == 2:
        raise ValueError(err.getvalue().strip().splitlines()[0])
from gaugan_sdk import benchmark as gbench
case("gaugan-benchmark --json in a missing folder", lambda: exits_2(lambda: gbench.main([str(T / "city.onnx"), "--json", str(T / "no" / "b.json")])))
import importlib.util
def load_sample(name, path):
    spec = importlib.util.spec_from_file_location(name, path); module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module); return module
paint = load_sample("paint_server", Path("samples/paint/server.py"))
for argv in (["--timeout", "inf"], ["--timeout", "1e12"], ["--max-upload-mb", "-1"], ["--port", "70000"]):
    case("paint " + " ".join(argv), lambda argv=argv: exits_2(lambda: paint.main([str(T / "city.onnx"), *argv])))
video = load_sample("video_stream", Path("samples/video_stream.py"))
from gaugan_sdk.labels import get_label_set
city = get_label_set("cityscapes")
def gray_building():
    if (video.to_label_ids(np.full((8, 8, 3), 70, np.uint8), city) != city.id_of("building")).any():
        raise AssertionError("building read as ids")
case("video: all-gray palette frame (building)", gray_building, expect_error=False)
frames = T / "frames"; frames.mkdir()
from PIL import Image as _Image
for i in range(3):
    _Image.fromarray(np.zeros((64, 128) if i != 1 else (32, 64), np.uint8)).save(frames / f"{i}.png")
def mixed_sizes():
    stats = video.main([str(T / "city.onnx"), "--input", str(frames), "--output", str(T / "v.mp4"), "--no-overlay"])
    import cv2
    c = cv2.VideoCapture(str(T / "v.mp4")); n = 0
    while c.read()[0]:
        n += 1
    if (stats["frames"], n) != (3, 3):
        raise AssertionError(f"summary {stats['frames']}, file {n}")
with contextlib.redirect_stderr(_io.StringIO()):
    case("video: masks of mixed sizes", mixed_sizes, expect_error=False)
(frames / "1.png").write_bytes((frames / "1.png").read_bytes()[:40])
case("video: a corrupt frame mid-folder", lambda: video.main([str(T / "city.onnx"), "--input", str(frames), "--output", str(T / "v.mp4")]))
# export
case("export: missing checkpoint", lambda: export_checkpoint(T / "nope.pt", format="onnx", output=T / "x.onnx", verbose=False))
(T / "text.pt").write_text("hello")
case("export: text file checkpoint", lambda: export_checkpoint(T / "text.pt", format="onnx", output=T / "x.onnx", verbose=False))
case("export: calib_dir missing", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", calib_dir=T / "nodir", verbose=False))
(T / "cal").mkdir(); (T / "cal" / "a.txt").write_text("x")
case("export: calib_dir without PNGs", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", calib_dir=T / "cal", verbose=False))
from PIL import Image
Image.fromarray(np.full((64, 128), 99, np.uint8)).save(T / "cal" / "bad.png")
case("export: calib ids out of range", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", calib_dir=T / "cal", verbose=False))
case("export: batch=(1,2)", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", batch=(1, 2), verbose=False))
case("export: height 100 (not stride)", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", height=100, verbose=False))
case("export: min_psnr nan", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", precision="fp16", min_psnr=float("nan"), verbose=False))
case("export: atol -1", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", atol=-1, verbose=False))
case("export: int8_max_fp16 2.0", lambda: export_checkpoint(T / "city.pt", format="onnx", precision="int8", output=T / "x.onnx", int8_max_fp16=2.0, verbose=False))
(T / "afile").write_text("x")
case("export: triton_repo is a file", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", triton_repo=T / "afile", verbose=False))
case("export: calib_count=-3", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", calib_count=-3, verbose=False))
case("export: overrides on ours", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "x.onnx", overrides=["ngf=4"], verbose=False))
# training options
from training.options import build_parser, options_from_args
def opts(*argv):
    return options_from_args(build_parser().parse_args(list(argv)))
for argv in (["--max-iters", "0"], ["--max-iters", "-5"], ["--batch-size", "0"], ["--dataset", "custom"],
             ["--set", "ngf=abc"], ["--set", "unknown=1"], ["--eval-every", "-1"], ["--lr", "-1"],
             ["--checkpoint-every", "0"], ["--num-workers", "-1"], ["--niter", "-2"]):
    def f(argv=argv):
        try:
            opts(*argv)
        except SystemExit as e:
            raise ValueError(f"argparse exit {e.code}") from None
    case("train " + " ".join(argv), f)
# third pass: training data and resume
from training.datasets import build_dataset
from training.options import TrainOptions
data = T / "data"
for sub in ("labels", "images"):
    (data / sub).mkdir(parents=True)
for i in range(2):
    _Image.fromarray(np.zeros((64, 64), np.uint8)).save(data / "labels" / f"s{i}.png")
    _Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(data / "images" / f"s{i}.jpg")
jpg = data / "images" / "s1.jpg"; jpg.write_bytes(jpg.read_bytes()[:len(jpg.read_bytes()) // 2])
topts = TrainOptions(dataset="custom", label_dir=str(data / "labels"), image_dir=str(data / "images"), load_size=64, model=dict(crop_size=64, label_nc=8)).resolved()
case("data scan: a truncated image", lambda: build_dataset(topts, topts.generator_config()))
from training import train as train_module
from test_training import TINY, _Segmenter
torch.jit.save(torch.jit.script(_Segmenter()), T / "seg.pt")
with contextlib.redirect_stdout(_io.StringIO()), contextlib.redirect_stderr(_io.StringIO()):
    first = train_module.main([*TINY, "--outdir", str(T / "runs"), "--max-iters", "2", "--checkpoint-every", "2", "--image-every", "0", "--seg-model", str(T / "seg.pt")])
    (T / "seg.pt").unlink()
    case("train --resume, its --seg-model gone", lambda: train_module.main(["--resume", str(first), "--max-iters", "3"]))
    case("train --inception-weights missing", lambda: train_module.main([*TINY, "--outdir", str(T / "runs"), "--max-iters", "2", "--inception-weights", str(T / "no.pth")]))
# the runtime's choice (issue 24) and the hashes that travel inside the file (issue 26)
case("backend='tensorflow'", lambda: Synthesizer(T / "city.onnx", backend="tensorflow"))
case("precision='bf16' on ONNX Runtime", lambda: Synthesizer(T / "city.onnx", backend="onnxruntime", precision="bf16"))
case("precision='int4'", lambda: Synthesizer(T / "city.onnx", backend="openvino", precision="int4"))
case("hint='fastest'", lambda: Synthesizer(T / "city.onnx", hint="fastest"))
case("int8_mode='exact' on a float file", lambda: Synthesizer(T / "city.onnx", int8_mode="exact"), expect_error=False)
alone = T / "alone"; alone.mkdir(); raw = bytearray((T / "city.onnx").read_bytes()); raw[len(raw) // 2] ^= 0xFF
(alone / "city.onnx").write_bytes(bytes(raw))  # copied without its sidecar, one weight byte flipped
case("ONNX alone with a flipped weight byte", lambda: Synthesizer(alone / "city.onnx"))
nohash = T / "nohash.onnx"; shutil.copy(T / "city.onnx", nohash)
d = json.loads(Path(f"{T}/city.onnx.json").read_text()); d.pop("artifact_sha256", None); Path(f"{nohash}.json").write_text(json.dumps(d))
case("sidecar without its artifact hash", lambda: Synthesizer(nohash))
case("export height=3_200_000", lambda: export_checkpoint(T / "city.pt", format="onnx", output=T / "h.onnx", height=3_200_000, verbose=False))
case("export format='openvino', precision='bf16'", lambda: export_checkpoint(T / "city.pt", format="openvino", precision="bf16", output=T / "b.xml", verbose=False))
case("export graph='sparse' to pt2", lambda: export_checkpoint(T / "city.pt", format="pt2", graph="sparse", output=T / "s.pt2", verbose=False))
try:
    import openvino  # noqa: F401
    (T / "ir").mkdir()
    export_checkpoint(T / "city.pt", format="openvino", output=T / "ir" / "city.xml", verbose=False, verify=False)
    (T / "ir" / "city.bin").rename(T / "ir" / "moved.bin")
    case("IR without its .bin", lambda: Synthesizer(T / "ir" / "city.xml"))
except ImportError:
    pass
w = max(len(n) for _, n, _ in results)
for kind, name, said in results:
    print(f"{kind:8} {name:<{w}}  {said}")
from collections import Counter
print(dict(Counter(k for k, _, _ in results)))
shutil.rmtree(T, ignore_errors=True)
