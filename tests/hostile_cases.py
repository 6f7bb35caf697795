"""Hostile inputs beyond those the test suite asserts one by one (issue 17's own cases have tests): each prints
CLEAR (an error naming the value and what is accepted), UNCLEAR (a raw library exception), OK (accepted, and
right to be) or WRONG. Run from the repository root: `python tests/hostile_cases.py` (about a minute)."""
import json, shutil, sys, tempfile, warnings
from pathlib import Path
import numpy as np
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
w = max(len(n) for _, n, _ in results)
for kind, name, said in results:
    print(f"{kind:8} {name:<{w}}  {said}")
from collections import Counter
print(dict(Counter(k for k, _, _ in results)))
shutil.rmtree(T, ignore_errors=True)
