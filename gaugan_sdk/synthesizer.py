"""Synthesizer: one light API over every artifact kind (torch-free for ONNX and TensorRT artifacts).

    from gaugan_sdk import Synthesizer
    syn = Synthesizer("engines/city.onnx")             # .onnx .plan .engine .pt2, a checkpoint, or the .json sidecar
    img = syn.run(label)                               # (H, W) int ids -> (H, W, 3) uint8 RGB
    img = syn.run(label, style=photo, seed=3)          # style-guided, z = mu + eps * std with eps from the seed
    imgs = syn.run(labels, seed=[1, 2, 3])             # (N, H, W) -> (N, H, W, 3)
    img = syn.run(palette_rgb_mask)                    # (H, W, 3) uint8 colour mask, decoded with the palette

Every input is checked on the host before it reaches an engine; a bad one is a ValueError / TypeError naming
the value and what is accepted. Masks of another size than the artifact takes are resized (nearest) and the
image comes back at the mask's size (bilinear), unless resize=False.

Metadata comes from the artifact's .json sidecar, else from ONNX metadata_props, else (a plan copied without
its sidecar) from the artifact's IO, with a warning: the label set is then unknown unless `labels=` names it.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .backends import Backend, RuntimeOptions, backend_module, open_backend
from .cpu import Execution, choose_execution, cpu_plan
from .config import GeneratorConfig
from .contract import INSTANCE, LABEL, MAX_PIXELS, STYLE, Z
from .imaging import image_to_uint8
from .inputs import (check_count, check_pixels, instance_int32, resize_bilinear_uint8, resize_nearest, seed_count,
                     seeds_for, style_array)
from .kinds import SUFFIXES, kind_of
from .labels import LabelSet, get_label_set, label_set_for, validate_label_ids, validate_label_ids_for
from .metadata import PROPS_PREFIX, ArtifactMetadata, cross_check, read_sidecar, sidecar_path

SEARCH_DIRS = ("", "engines")


class Synthesizer:
    """Load an artifact (and its style encoder, when the metadata names one) and synthesize images."""

    def __init__(self, path: str | os.PathLike, *, device: str | None = None, providers: list[str] | None = None,
                 resize: bool = True, warmup: int = 0, threads: int | None = None,
                 labels: str | LabelSet | None = None, int8_mode: str = "auto", max_pixels: int | None = MAX_PIXELS,
                 check_hash: bool = True, backend: str = "auto", precision: str = "auto", hint: str = "latency"):
        """`labels`: a built-in label set name or a LabelSet, for the palette and class names; needed only by
        artifacts that do not record theirs (a plan without its sidecar), checked against those that do.
        `int8_mode`: how an int8 ONNX runs on the CPU: "exact" (ONNX Runtime, Q/DQ as written, what TensorRT
        computes, about fp32 speed), "fused" (integer kernels; they saturate on x86 CPUs without VNNI), or
        "auto": exact where the fused kernels would saturate, with a warning (`gaugan_sdk.cpu`).
        `max_pixels`: the most label-map pixels one run() call takes, all maps together (default 8192 x 8192;
        None: no limit); a larger request is refused from its shape, before any memory is spent on it.
        `check_hash`: refuse an artifact whose content is not what its sidecar, or the file itself (ONNX, IR),
        recorded at export (a damaged or replaced file; one sha256 pass over the file at load).
        `backend`, `precision`: the runtime (a name in the artifact kind's backends: "onnxruntime" or "openvino"
        for .onnx) and the execution precision asked of it ("f32", "bf16", "f16"); "auto": this CPU's plan
        (`gaugan_sdk.cpu.choose_execution`: a reduced precision only where the artifact met its gate at export).
        `hint`: "latency" (one request at a time) or "throughput" (OpenVINO: a batch or a stream's frames in flight
        on parallel streams)."""
        for name, value in (("backend", backend), ("precision", precision)):
            if not isinstance(value, str):
                raise TypeError(f"{name}={value!r}; accepted: 'auto' or a name (gaugan_sdk.backends.RuntimeOptions)")
        self._asked = RuntimeOptions(device, providers, threads, int8_mode, None if backend == "auto" else backend,
                                     None if precision == "auto" else precision, hint)  # checked before any file
        if backend == "auto" and (providers is not None or int8_mode == "exact"):  # ONNX Runtime's options: it runs
            self._asked = dataclasses.replace(self._asked, backend="onnxruntime")
        self.plan = cpu_plan()
        if not isinstance(resize, bool):
            raise ValueError(f"resize={resize!r}; accepted: True (masks of other sizes are resized) or False")
        warmup = check_count(warmup, "warmup")
        self.max_pixels = None if max_pixels is None else check_count(max_pixels, "max_pixels", 1)
        self._closed = False
        self.path = resolve_artifact(path)
        self.resize = resize
        self._check_hash = bool(check_hash)
        self._warned_instance = False
        self.generator, self.encoder, self.meta, self.encoder_meta = self._open(self.path)
        self.config: GeneratorConfig | None = self.meta.config  # None: known from the artifact's IO alone
        self.labels: LabelSet | None = _label_set(self.config, labels, self.path.name)
        if self.config is None and self.labels is not None and self.meta.role == "generator":
            try:
                self._check_label_set_fits()
            except BaseException:
                self.close()
                raise
        for _ in range(warmup):  # an instance map too, so the user still sees the no-instance notice once
            blank = np.zeros(self.size, dtype=np.uint8)
            self.run(blank, blank if self.meta.takes_instance else None,
                     seed=0 if self.meta.z_dim is not None else None)

    # ------------------------------------------------------------------ public API
    @property
    def size(self) -> tuple[int, int]:
        """The (height, width) the generator is optimized for."""
        return self.meta.height.opt, self.meta.width.opt

    @property
    def backend(self) -> str:
        return self.generator.name

    @property
    def execution(self) -> str:
        """What runs the generator, in words (the backend, its device or provider, its precision)."""
        return self.generator.execution

    @property
    def chosen(self) -> Execution:
        """The generator's backend and execution precision, and why (the CPU plan, or what was asked)."""
        return self._chosen

    def run(self, label: np.ndarray, instance: np.ndarray | None = None, *, style: np.ndarray | None = None,
            seed: int | Sequence[int] | None = None, device_output: bool = False):
        """Label ids (H, W) / (N, H, W), or a palette RGB mask (H, W, 3) / (N, H, W, 3) uint8 -> uint8 RGB
        (H, W, 3) / (N, H, W, 3) at the mask's size.

        device_output=True (zero-copy pipelines): the engine's output of one call, batched, where the engine
        wrote it: float32 (N, 3, H, W) in [-1, 1], or uint8 (N, H, W, 3) for --uint8-output artifacts; a
        DeviceArray (CUDA memory, valid until the next call) for TensorRT and ONNX Runtime on a GPU, a
        torch.Tensor for .pt2 packages and checkpoints, numpy where ONNX Runtime ran on the CPU. The maps must
        be at a size the artifact takes and their count within its batch range.

        One label map with several seeds or style images (style models): one image per seed / style, the
        style explorer's case. Artifacts that take one mask for N styles (the fast graph) compute its mask
        branch once; others get the map repeated."""
        if self._closed:
            raise RuntimeError(f"this Synthesizer of {self.path.name} is closed; open a new one to run it again")
        label = np.asarray(label)
        if label.ndim in (3, 4) and label.shape[-1] == 4 and label.dtype == np.uint8:
            raise ValueError(f"label of shape {label.shape} uint8 looks like an RGBA image: palette masks are RGB "
                             f"(mask[..., :3]); label ids 4 pixels wide are (N, H, W) arrays of another dtype "
                             f"(int32)")
        colour = label.ndim in (3, 4) and label.shape[-1] == 3 and label.dtype == np.uint8
        single = label.ndim == 2 or (label.ndim == 3 and colour)
        if label.ndim - colour in (2, 3):  # other ranks: the validation below names them
            check_pixels(label.shape[:label.ndim - colour], self.max_pixels)
        style = None if style is None else style_array(style)
        ids = self._ids(label)
        maps, height, width = ids.shape
        inst = self._instance(instance, ids)
        count = self._image_count(maps, style, seed)
        target = self._target_size(height, width)
        self._check_images(count, maps, (height, width), target)
        z = self._z(count, style, seed)
        shared = maps == 1 and count > 1  # one mask for N styles
        if shared and not self.meta.broadcasts_label:
            ids, inst = np.repeat(ids, count, axis=0), None if inst is None else np.repeat(inst, count, axis=0)
        if device_output:
            batch = self.meta.batch
            if target != (height, width) or count not in batch:
                raise ValueError(f"device_output hands out one engine call as is: {count} map(s) of {height}x"
                                 f"{width} given, {self.path.name} takes {batch.min}..{batch.max} maps of "
                                 f"{target[0]}x{target[1]} in one call")
            return self._generate(ids, inst, z, device_output=True)
        if target != (height, width):  # in the maps' own dtype: no full-size int32 copy
            ids = resize_nearest(ids, target)
            inst = None if inst is None else resize_nearest(inst, target)
        step = max(1, self.meta.batch.min) if self._parallel else self.meta.batch.max

        def chunk(maps: np.ndarray | None, i: int) -> np.ndarray | None:
            return None if maps is None else maps if len(maps) == 1 else maps[i:i + step]

        image = np.concatenate(self._generate_all([(chunk(ids, i), chunk(inst, i), None if z is None else z[i:i + step])
                                                   for i in range(0, count, step)]))
        if target != (height, width):
            image = resize_bilinear_uint8(image, (height, width))
        return image[0] if single and count == 1 else image

    def stream(self, frames: Iterable[np.ndarray], **options) -> Iterator[np.ndarray]:
        """run() over an iterable of frames (label ids or palette masks), one image per frame, lazily. Under the
        throughput hint (OpenVINO), frames of one shape are taken a few at a time and run in flight together on the
        backend's parallel requests, the images yielded in order; options then apply to each frame as they would
        alone (one seed or one style for every frame)."""
        group = self.generator.requests if self._parallel else 1
        shared = not any(isinstance(v, (list, tuple)) or np.ndim(v) > (3 if k == "style" else 0)
                         for k, v in options.items() if v is not None)
        if group <= 1 or not shared or options.get("device_output"):
            for frame in frames:
                yield self.run(frame, **options)
            return
        pending: list[np.ndarray] = []
        for frame in frames:
            frame = np.asarray(frame)
            if pending and (frame.shape != pending[0].shape or frame.dtype != pending[0].dtype):
                yield from self._run_group(pending, options)
                pending = []
            pending.append(frame)
            if len(pending) == group:
                yield from self._run_group(pending, options)
                pending = []
        if pending:
            yield from self._run_group(pending, options)

    def _run_group(self, frames: list[np.ndarray], options: dict) -> Iterator[np.ndarray]:
        seed = options.get("seed")
        grouped = {**options, "seed": None if seed is None else [seed] * len(frames)}
        images = self.run(np.stack(frames), **grouped)
        yield from (images if len(frames) > 1 or images.ndim == 4 else [images])

    def encode(self, style: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A style photo (H, W, 3) or batch (N, H, W, 3) uint8 RGB -> (mu, logvar), each (N, z_dim)."""
        if self.encoder is None:
            raise ValueError(f"{self.path.name} has no style encoder (the model has no style path: use_vae=False)")
        given = style_array(style)
        if given.dtype != np.uint8:
            raise TypeError(f"a style image must be uint8 RGB, got dtype {given.dtype}")
        style = given[None] if given.ndim == 3 else given
        if style.ndim != 4 or style.shape[-1] != 3 or min(style.shape[:3]) < 1:
            raise ValueError(f"a style image must be (H, W, 3) or (N, H, W, 3) RGB, got shape {given.shape}")
        sides = self.encoder_meta.height
        if not all(side in sides for side in style.shape[1:3]):
            raise ValueError(f"style image sides {style.shape[1:3]} outside {sides.min}..{sides.max} pixels")
        mu, logvar = self.encoder.run({STYLE: np.ascontiguousarray(style)})[:2]
        return mu.astype(np.float32), logvar.astype(np.float32)

    def close(self) -> None:
        self._closed = True
        for backend in (self.generator, self.encoder):
            if backend is not None:
                backend.close()

    def __enter__(self) -> Synthesizer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        h, w = self.size
        return (f"Synthesizer({str(self.path)!r}, {self._chosen.label} ({self._chosen.why}), {self.meta.precision} "
                f"file, {h}x{w}, labels={self.labels.name if self.labels else 'unknown'}"
                f"{', style encoder' if self.encoder else ''})")

    # ------------------------------------------------------------------ inputs
    def _ids(self, label: np.ndarray) -> np.ndarray:
        if label.ndim in (3, 4) and label.shape[-1] == 3 and label.dtype == np.uint8:
            # (N, H, 3) uint8 ids are indistinguishable from one (H, W, 3) colour mask: the rule is said on failure
            ids_too = " (N label maps 3 pixels wide: pass them as int32)" if label.ndim == 3 else ""
            if self.labels is None:
                raise ValueError(f"a colour mask of shape {label.shape} needs the model's palette, and "
                                 f"{self.path.name} does not record its label set: pass label ids, or "
                                 f"Synthesizer(..., labels='cityscapes' or another name or LabelSet){ids_too}")
            try:
                label = self.labels.decode(label)  # a palette mask
            except ValueError as e:
                if not ids_too:
                    raise
                raise ValueError(f"uint8 {label.shape} is read as one (H, W, 3) colour mask, and {e}{ids_too}") \
                    from None
        if self.config is None:  # dtype, rank, emptiness and range; the ids as given (int32 after any resize)
            return validate_label_ids_for(label, self.labels)
        return validate_label_ids(label, self.config)

    def _instance(self, instance: np.ndarray | None, ids: np.ndarray) -> np.ndarray | None:
        if not self.meta.takes_instance:
            if instance is not None:
                raise ValueError("this model does not use instance maps (use_instance=False); pass instance=None")
            return None
        if instance is None:
            if not self._warned_instance:
                warnings.warn("no instance map given: using the label map's class boundaries as instance edges",
                              stacklevel=3)
                self._warned_instance = True
            return ids
        inst = np.asarray(instance)
        if inst.dtype.kind not in "iu":
            raise TypeError(f"instance ids must be an integer array, got dtype {inst.dtype}")
        inst = inst[None] if inst.ndim == 2 else inst
        if inst.shape != ids.shape:
            raise ValueError(f"instance map has shape {np.shape(instance)} but the label map has "
                             f"{ids.shape[1:] if ids.shape[0] == 1 else ids.shape}; they must match")
        return inst

    def _image_count(self, maps: int, style: np.ndarray | None, seed) -> int:
        """Images to make: one per map, or, for one map of a style model, one per seed or style image given."""
        if maps != 1 or self.meta.z_dim is None:
            return maps
        styles = np.shape(style)[0] if style is not None and np.ndim(style) == 4 else 1
        seeds = seed_count(seed) or 1
        if styles > 1 and seeds > 1 and styles != seeds:
            raise ValueError(f"{styles} style images and {seeds} seeds for one label map: give as many of each")
        return max(styles, seeds)

    def _check_images(self, count: int, maps: int, size: tuple[int, int], target: tuple[int, int]) -> None:
        """max_pixels counts the images a call makes, not the maps given: one map with N seeds or style images
        makes N images, and maps smaller than the artifact's size are made at that size, then resized."""
        made = max(size, target, key=lambda hw: hw[0] * hw[1])
        if self.max_pixels is None or (count == maps and made == size):  # the maps' own check covered it
            return
        how = [f"{maps} label map(s)"]
        if made != size:
            how[0] += f" of {size[0]}x{size[1]}, made at the artifact's {made[0]}x{made[1]}"
        if count != maps:
            how.append(f"{count} seeds or style images")
        check_pixels((count, *made), self.max_pixels, f"the images this call makes ({' x '.join(how)})")

    def _z(self, count: int, style: np.ndarray | None, seed) -> np.ndarray | None:
        if self.meta.z_dim is None:
            if style is not None or seed is not None:
                raise ValueError(f"{self.path.name} has no style path (use_vae=False): "
                                 f"{'style images' if style is not None else 'seeds'} do not apply")
            return None
        seeds = seeds_for(seed, count)
        if style is not None:
            mu, logvar = self.encode(style)
            if len(mu) not in (1, count):
                raise ValueError(f"{len(mu)} style images for {count} label maps: give one, or one per map")
            mu, logvar = np.broadcast_to(mu, (count, mu.shape[1])), np.broadcast_to(logvar, (count, mu.shape[1]))
            if seeds is None:
                return np.ascontiguousarray(mu)  # the style itself: z = mu
            eps = np.stack([np.random.default_rng(s).standard_normal(mu.shape[1]) for s in seeds])
            return (mu + eps * np.exp(0.5 * logvar)).astype(np.float32)
        rngs = [np.random.default_rng(s) for s in seeds] if seeds is not None else [np.random.default_rng()] * count
        return np.stack([rng.standard_normal(self.meta.z_dim) for rng in rngs]).astype(np.float32)

    def _target_size(self, height: int, width: int) -> tuple[int, int]:
        meta, stride = self.meta, self.meta.size_step
        h_ok = height in meta.height and (not meta.dynamic_size or height % stride == 0)
        w_ok = width in meta.width and (not meta.dynamic_size or width % stride == 0)
        if h_ok and w_ok:
            return height, width
        accepted = (f"{meta.height.min}x{meta.width.min} .. {meta.height.max}x{meta.width.max} in multiples of {stride}"
                    if meta.dynamic_size else f"{meta.height.min}x{meta.width.min}")
        if not self.resize:
            raise ValueError(f"label map of {height}x{width} but {self.path.name} takes {accepted} (resize=False)")
        if not meta.dynamic_size:
            return meta.height.min, meta.width.min
        fit = lambda v, lo, hi: int(np.clip(round(v / stride) * stride, lo, hi))  # noqa: E731
        return fit(height, meta.height.min, meta.height.max), fit(width, meta.width.min, meta.width.max)

    @property
    def _parallel(self) -> bool:
        """Whether a batch goes to the engine as requests in flight together (the throughput hint, on a backend
        with several requests) rather than as one batched call."""
        return self._asked.hint == "throughput" and getattr(self.generator, "requests", 1) > 1

    def _generate_all(self, chunks: list[tuple]) -> list[np.ndarray]:
        """Engine calls for (ids, instances, z) chunks: in flight together where `_parallel`, else one by one."""
        if not self._parallel or len(chunks) == 1:
            return [self._generate(*c) for c in chunks]
        feeds = [self._feeds(*c) for c in chunks]
        outputs = self.generator.run_many([f for f, _ in feeds])
        return [self._images(out[0], count) for out, (_, count) in zip(outputs, feeds)]

    def _generate(self, ids: np.ndarray, inst: np.ndarray | None, z: np.ndarray | None,
                  device_output: bool = False):
        """One engine call: `count` images (z's batch, else the maps'); one map may serve them all."""
        feeds, count = self._feeds(ids, inst, z)
        (image,) = self.generator.run(feeds, device_output)[:1]
        return image if device_output else self._images(image, count)

    def _images(self, image: np.ndarray, count: int) -> np.ndarray:
        return (image if self.meta.uint8_output else image_to_uint8(image))[:count]

    def _feeds(self, ids: np.ndarray, inst: np.ndarray | None, z: np.ndarray | None) -> tuple[dict, int]:
        """The engine's inputs for one call, and how many images it makes (z's batch, else the maps')."""
        count = len(ids) if z is None else len(z)
        shared = len(ids) < count  # one map for all (label_batch 1)
        feeds = {LABEL: ids[:, None].astype(np.int32, copy=False)}  # the graph's int32, at the engine's size
        if inst is not None:
            feeds[INSTANCE] = instance_int32(inst)[:, None]
        if z is not None:
            feeds[Z] = z
        if count < self.meta.batch.min:  # an artifact with a larger minimum batch: pad, then drop the padding
            pad = lambda v: np.concatenate([v, np.repeat(v[-1:], self.meta.batch.min - count, axis=0)])  # noqa: E731
            feeds = {k: v if shared and k != Z else pad(v) for k, v in feeds.items()}
        return feeds, count

    def _check_label_set_fits(self) -> None:
        """`labels` for an artifact without metadata, whose class count is unknown: an id past the model's classes
        makes an empty one-hot inside the graph, no error, no class. The artifact itself tells whether the set is
        wider than the model: its image for the set's highest id must differ from its image for an id past every
        class. Two runs at its smallest size, only on this path (an artifact with metadata is checked from it)."""
        labels, name = self.labels, self.path.name
        top = len(labels) - 1
        shape = (1, self.meta.height.min, self.meta.width.min)
        inst = np.zeros(shape, np.int32) if self.meta.takes_instance else None
        z = np.zeros((1, self.meta.z_dim), np.float32) if self.meta.z_dim is not None else None
        try:
            image = self._generate(np.full(shape, top, np.int32), inst, z)
        except Exception as e:  # a lookup graph indexing past its table
            raise ValueError(f"labels {labels.name!r} has {len(labels)} ids but {name} cannot run id {top} "
                             f"({labels.name_of(top)}): {str(e).splitlines()[0][:200]}; pass the label set it was "
                             f"trained with") from e
        try:
            past = self._generate(np.full(shape, np.iinfo(np.int32).max, np.int32), inst, z)
        except Exception:
            return  # the graph refuses ids past its classes itself
        if np.array_equal(image, past):
            raise ValueError(f"labels {labels.name!r} has {len(labels)} ids but {name} has fewer classes: its image "
                             f"for id {top} ({labels.name_of(top)}) is the one it makes for an id past every class "
                             f"(an empty one-hot); pass the label set it was trained with, or restore its metadata "
                             f"(the .json sidecar gaugan-export wrote beside it)")

    # ------------------------------------------------------------------ loading
    def _open(self, path: Path):
        kind = kind_of(path)
        if kind.whole_model:  # one file holds both (checkpoints): metadata from the contract
            self._chosen = choose_execution(kind, None, self.plan, backend=self._asked.backend,
                                            precision=self._asked.precision, device=self._asked.device)
            return backend_module(kind).open_model(path, self._asked)
        generator, meta = self._load(path)
        if meta.role != "generator":
            generator.close()
            stem = path.stem[:-len("_encoder")] if path.stem.endswith("_encoder") else None
            which = f"the generator {stem}{path.suffix}" if stem and path.with_name(f"{stem}{path.suffix}").is_file() \
                else "its generator (gaugan-export writes NAME.onnx beside NAME_encoder.onnx)"
            raise ValueError(f"{path.name} is the style {meta.role} of a model, not a generator: open {which}, "
                             f"and the Synthesizer finds this encoder beside it (Synthesizer.encode runs it)")
        encoder = encoder_meta = None
        encoder_name = meta.encoder
        if meta.config is None and meta.z_dim is not None:  # no metadata: gaugan-export's naming, when present
            guess = path.with_name(f"{path.stem}_encoder{path.suffix}")
            encoder_name = guess.name if guess.is_file() else None
        if encoder_name:
            encoder_path = path.with_name(encoder_name)
            if not encoder_path.is_file():
                raise FileNotFoundError(f"{path.name} names the style encoder {meta.encoder}, which is not in "
                                        f"{path.parent}")
            encoder, encoder_meta = self._load(encoder_path)
        _warn_exact_int8(generator, meta, path.name)
        return generator, encoder, meta, encoder_meta

    def _load(self, path: Path) -> tuple[Backend, ArtifactMetadata]:
        """One artifact and its metadata: the sidecar, else what the file carries (read from the same backend
        that runs it, so the file is opened once), else the artifact's IO (with a warning). The backend and
        execution precision are the CPU plan's for that metadata, unless asked (`choose_execution`)."""
        kind = kind_of(path)
        for part in kind.files(path)[1:]:
            if not part.is_file():
                raise FileNotFoundError(f"{path.name} needs {part.name} beside it, and {part.parent} has none: "
                                        f"a {kind.name} artifact is {' + '.join(f.name for f in kind.files(path))}, "
                                        f"copied together")
        if sidecar_path(path).is_file():
            meta = read_sidecar(path, check_hash=self._check_hash)
            self._check_weights(kind, path, meta.weights_sha256)
            backend = self._open_backend(kind, path, meta)
            _check_sidecar(path, meta, backend)
            return backend, meta
        if not kind.describes_io:
            raise FileNotFoundError(f"{path} has no metadata sidecar {sidecar_path(path).name}; re-export it with "
                                    f"gaugan-export, which writes one beside every artifact")
        backend = self._open_backend(kind, path, None)
        props = backend.metadata_props()
        if any(key.startswith(PROPS_PREFIX) for key in props):
            meta = ArtifactMetadata.from_props(props, f"{path} metadata_props")
            try:
                self._check_weights(kind, path, meta.weights_sha256)
            except ValueError:
                backend.close()
                raise
            chosen = choose_execution(kind, meta, self.plan, backend=self._asked.backend,
                                      precision=self._asked.precision, device=self._asked.device)
            if backend.device not in meta.variant.kind.devices or chosen.label != self._chosen.label:
                backend.close()  # opened before its graph and precision were known
                backend = self._open_backend(kind, path, meta)
            return backend, meta
        try:
            meta = backend.io_metadata(path.name)
        except ValueError:
            backend.close()
            raise
        warnings.warn(f"{path.name} carries no metadata (no {sidecar_path(path).name} beside it"
                      f"{', no gaugan_sdk metadata_props' if path.suffix == '.onnx' else ''}): running it from its "
                      f"IO ({_describe_io(meta)}). Its label set, precision and source are unknown: ids are "
                      f"range-checked only with labels=...; copy the sidecar beside it or re-export it with "
                      f"gaugan-export to restore them", stacklevel=4)
        return backend, meta


    def _open_backend(self, kind, path: Path, meta: ArtifactMetadata | None) -> Backend:
        """The artifact on the backend and execution precision chosen for it (recorded as `chosen`)."""
        chosen = choose_execution(kind, meta, self.plan, backend=self._asked.backend,
                                  precision=self._asked.precision, device=self._asked.device)
        if meta is None or meta.role == "generator":
            self._chosen = chosen
        options = dataclasses.replace(self._asked, backend=chosen.backend, precision=chosen.precision)
        return open_backend(kind, path, meta, options)

    def _check_weights(self, kind, path: Path, recorded: str | None) -> None:
        """The weights against the hash the file itself records (ONNX, IR): a file copied without its sidecar,
        or with a sidecar that says nothing, is still checked."""
        if not self._check_hash or recorded is None:
            return
        actual = backend_module(kind).weights_sha256(path)
        if actual != recorded:
            raise ValueError(f"{path.name}: its weights are not those it was exported with (sha256 {actual[:16]}..., "
                             f"the file records {recorded[:16]}...): changed or damaged after export. Re-export it "
                             f"or restore the original (Synthesizer(..., check_hash=False) skips this check)")


_warned_exact_int8 = False


def _warn_exact_int8(backend: Backend, meta: ArtifactMetadata, name: str) -> None:
    """Once per process: an int8 artifact that "auto" runs in exact mode on this CPU, and why."""
    global _warned_exact_int8
    reason = getattr(backend, "int8_reason", None)
    if meta.precision != "int8" or not reason or _warned_exact_int8:
        return
    _warned_exact_int8 = True
    warnings.warn(f"{name}: running the int8 model with its Q/DQ executed exactly, at about the fp32 model's "
                  f"speed, because {reason} and would silently lower its quality. Synthesizer(..., "
                  f"int8_mode='fused') forces the integer kernels anyway", stacklevel=4)


def resolve_artifact(path: str | os.PathLike) -> Path:
    """The artifact file for `path` (an artifact, its .json sidecar, or an OpenVINO model folder), looked up as
    given and in engines/."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path={path!r}; accepted: an artifact's path (str or os.PathLike): "
                        f"{', '.join(sorted(SUFFIXES))} or its .json sidecar")
    given = Path(path)
    folder = next((Path(f) / given for f in SEARCH_DIRS if (Path(f) / given).is_dir()), None)
    if folder is not None:  # an OpenVINO model folder, as Ultralytics writes them: <stem>_openvino_model/
        xmls = sorted(folder.glob("*.xml"))
        named = [x for x in xmls if folder.name == f"{x.stem}_openvino_model"]
        if len(named or xmls) != 1:
            raise ValueError(f"{path} is a folder; accepted: an artifact file ({', '.join(sorted(SUFFIXES))}), or an "
                             f"OpenVINO model folder holding one .xml IR (it holds {len(xmls)})")
        return (named or xmls)[0]
    if given.suffix == ".json":
        given = given.with_suffix("")  # city.onnx.json -> city.onnx
    if given.suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown artifact suffix {given.suffix!r}; accepted: "
                         f"{', '.join(sorted(SUFFIXES))} (or the artifact's .json sidecar)")
    tried = []
    for folder in SEARCH_DIRS:
        candidate = Path(folder) / given if folder and not given.is_absolute() else given
        tried.append(str(candidate))
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"artifact not found: {path} (looked for {', '.join(dict.fromkeys(tried))})")


def _check_sidecar(path: Path, meta: ArtifactMetadata, backend: Backend) -> None:
    try:
        io = backend.io()[:2]
    except NotImplementedError:  # .pt2 packages: their input names are what the metadata says
        io = None
    cross_check(meta, io, backend.metadata_props(), path.name)


def _label_set(config: GeneratorConfig | None, given: str | LabelSet | None, artifact: str) -> LabelSet | None:
    """The label set of a model: its config's, or the one the user names (checked against the config)."""
    labels = get_label_set(given) if isinstance(given, str) else given
    if labels is not None and not isinstance(labels, LabelSet):
        raise TypeError(f"labels={given!r}; accepted: a built-in label set name or a gaugan_sdk.labels.LabelSet")
    if config is None:
        return labels
    own = label_set_for(config)
    if labels is not None and (len(labels), labels.dontcare) != (len(own), own.dontcare):
        raise ValueError(f"labels {labels.name!r} has {len(labels)} ids (dontcare={labels.dontcare}) but {artifact} "
                         f"was trained with {len(own)} (dontcare={own.dontcare})")
    return labels or own


def _describe_io(meta: ArtifactMetadata) -> str:
    inputs = ", ".join(f"{t.name} {t.dtype} {tuple(t.shape)}" for t in meta.inputs)
    size = f"{meta.height.min}x{meta.width.min}"
    if meta.dynamic_size:
        size += f"..{meta.height.max}x{meta.width.max}"
    return f"{meta.role}: {inputs}; batch {meta.batch.min}..{meta.batch.max}; {size}"
