"""The main job, end to end on the built-in procedural dataset: train, export, synthesize, measure.

    python samples/quickstart.py                  # about 8 minutes on a 2-core CPU; longer training on a GPU
    python samples/quickstart.py --iters 2000     # train longer

1. `python -m training.train` trains a small SPADE generator on procedural scenes (CPU: 64x128, ngf 16;
   GPU: 128x256, ngf 32 and more iterations);
2. `gaugan-export` exports it to ONNX fp32 and fp16, each verified against PyTorch;
3. `Synthesizer` turns held-out masks (scenes training never saw) into images, on the runtime and precision this
   CPU's plan picks (gaugan_sdk.cpu; OpenVINO bf16 where the CPU has bf16 units and the export verified it): a
   grid PNG, mask | generated | the scene's own rendering;
4. the procedural oracle scores the generated images (mIoU, as the paper scores with a segmentation network) and
   `gaugan-benchmark`'s timing runs every artifact on every runtime installed, side by side.
Everything lands in one folder (default runs/NNNNN-quickstart), summarized in summary.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from export import export_checkpoint
from gaugan_sdk import Synthesizer
from gaugan_sdk.benchmark import benchmark, table
from gaugan_sdk.procedural import SceneOracle, scene_sample
from training import train
from training.run import list_checkpoints, write_json
from training.metrics import ConfusionMatrix

HELD_OUT_SEED = 900_000_000  # far from the training scenes (seeds 0..N)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, help="training iterations (default: 400 on CPU, 3000 on a GPU)")
    p.add_argument("--outdir", type=Path, default=Path("runs"))
    p.add_argument("--device", default="auto")
    p.add_argument("--samples", type=int, default=16, help="held-out masks to synthesize and score")
    args = p.parse_args(argv)
    gpu = _cuda_available() if args.device == "auto" else args.device.startswith("cuda")
    t_start = time.perf_counter()

    # 1. train ------------------------------------------------------------------------------------
    size = ["--set", "crop_size=256", "--set", "ngf=32", "--ndf", "32", "--batch-size", "16"] if gpu else \
        ["--set", "crop_size=128", "--set", "ngf=16", "--set", "spade_hidden=32", "--ndf", "16", "--batch-size", "8"]
    iters = args.iters or (3000 if gpu else 400)
    print(f"[1/4] training {iters} iterations on procedural scenes ({'GPU' if gpu else 'CPU'})", flush=True)
    run_dir = train.main([*size, "--dataset", "procedural", "--name", "quickstart", "--outdir", str(args.outdir),
                          "--max-iters", str(iters), "--procedural-scenes", str(max(2000, iters * 8)),
                          "--log-every", "25", "--image-every", "100", "--checkpoint-every", "200",
                          "--eval-samples", str(args.samples), "--device", args.device])
    checkpoint = list_checkpoints(run_dir)[-1]
    t_train = time.perf_counter()

    # 2. export -----------------------------------------------------------------------------------
    engines = run_dir / "engines"
    engines.mkdir(exist_ok=True)
    artifacts = []
    for precision in ("fp32", "fp16"):
        out = engines / f"quickstart_{precision}.onnx"
        print(f"[2/4] export_checkpoint(..., format='onnx', precision='{precision}', output='{out}')", flush=True)
        result = export_checkpoint(checkpoint, format="onnx", precision=precision, output=out, batch=8,
                                   calib_count=8)  # raises, naming the failed check, if verification fails
        artifacts.append(result.output)
    t_export = time.perf_counter()

    # 3. synthesize held-out masks ----------------------------------------------------------------
    syn = Synthesizer(artifacts[0])  # where this CPU's plan runs it fastest among the verified executions
    print(f"[3/4] {syn!r}", flush=True)
    height, width = syn.size
    scenes = [scene_sample(HELD_OUT_SEED + i, height, width, syn.labels) for i in range(args.samples)]
    masks, instances, renders = (np.stack(parts) for parts in zip(*scenes))
    generated = np.concatenate([syn.run(masks[i:i + 8], instance=instances[i:i + 8]) for i in range(0, len(masks), 8)])
    syn.close()
    grid = np.concatenate([np.concatenate([syn.labels.colorize(m), g, r], axis=1)
                           for m, g, r in zip(masks[:8], generated[:8], renders[:8])], axis=0)
    grid_path = run_dir / "quickstart_grid.png"
    Image.fromarray(grid).save(grid_path)
    print(f"[3/4] {len(masks)} held-out masks -> {grid_path} (mask | generated | scene rendering)", flush=True)

    # 4. measure ----------------------------------------------------------------------------------
    oracle = SceneOracle.fit(syn.labels, height, width)
    scores = {}
    for name, images in (("generated", generated), ("scene renderings (ceiling)", renders)):
        cm = ConfusionMatrix(len(syn.labels))
        cm.update(masks, oracle.segment(images))
        scores[name] = cm.mean_iou()
    flat = ConfusionMatrix(len(syn.labels))
    flat.update(masks, oracle.segment(np.full_like(renders, 128)))
    scores["flat gray (floor)"] = flat.mean_iou()
    rows, against = benchmark([*artifacts, checkpoint], reference=checkpoint, batches=(1, 8), warmup=1, iters=5,
                              all_runtimes=True)  # each runtime installed; `plan` marks what Synthesizer picks
    latency = table(rows, against)
    summary = {
        "run_dir": str(run_dir), "checkpoint": str(checkpoint), "artifacts": [str(a) for a in artifacts],
        "grid": str(grid_path), "iterations": iters, "image_size": [height, width],
        "oracle_mIoU": scores, "latency": latency.to_json(),
        "minutes": {"train": (t_train - t_start) / 60, "export": (t_export - t_train) / 60,
                    "total": (time.perf_counter() - t_start) / 60},
    }
    write_json(run_dir / "summary.json", summary)  # atomic, like every file the SDK writes

    print(f"[4/4] oracle mIoU on {len(masks)} held-out masks: " +
          ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    print("\n" + latency.text())
    print(f"\ndone in {summary['minutes']['total']:.1f} min: {run_dir}\n  grid      {grid_path}\n  summary   "
          f"{run_dir / 'summary.json'}\n  next: Synthesizer({str(artifacts[0])!r}).run(mask)  |  tensorboard "
          f"--logdir {run_dir}")
    return summary


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
