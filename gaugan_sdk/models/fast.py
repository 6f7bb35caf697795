"""The fast generator graph: the reference SPADE generator restructured by exact identities, for deployment.

Eval mode only, built from a folded generator (`fold_for_inference`); every identity is exact in real
arithmetic and equal to the reference in fp32 up to rounding (tests/test_fast.py, full size):

- Batch norm folded into the modulation. With s = 1 / sqrt(var + eps) per channel,
  BN(x) * (1 + gamma) + beta = (x - mean) * A + B with A = s * (1 + gamma) and B = beta. gamma and beta are
  convs of the hidden map h, so A and B are one conv of h (hidden -> 2C) with A's weights and bias rescaled by
  s: each SPADE is one conv and one multiply-add, and no normalization op is left. The mean subtraction is kept
  apart (folded into x * A + (B - mean * A) it cancels catastrophically in float32 where a channel's mean is
  large against its spread: 0.3 max error seen on a tiny model) and, where x comes straight from a conv
  (norm_1 reads conv_0 alone), folded into that conv's bias. Instance-norm models keep their norm:
  IN(x) * A + B with A = 1 + gamma, B = beta.
- One mask conv per residual block: norm_0, norm_1 (and norm_s) see the same resized mask, so their
  mask -> hidden convs are one conv with 2 or 3 x hidden outputs, split after the ReLU.
- The mask conv on a one-hot map is a lookup (mask_conv="lookup"): conv3x3(onehot(L))[:, p] =
  b + sum over the taps t of W[:, L(p + t), t]; taps in the zero padding add nothing (they read an all-zero
  row), and the instance-edge channel adds a 1-channel conv of the edge map. No multiply-accumulates, nine
  gathers of hidden-width rows per pixel instead; which form is faster depends on label count and hardware.
- Boundary-sparse (the "sparse" variant, models.sparse): the modulation maps are per-class constants inside regions, so
  each block computes the dense hidden -> [A; B] conv only near class boundaries (dense where that is most of
  its pixels).
- One mask, N styles: the mask branch depends only on the mask. For style models the label batch may be 1
  with z of batch N: the mask branch runs once and its A, B broadcast over the N images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import GeneratorConfig
from ..contract import GraphVariant
from ..labels import DONTCARE_ID
from .generator import SPADEGenerator
from .semantics import instance_edges_tensor
from .spade import LEAKY_SLOPE, SPADE, SPADEResnetBlock
from .sparse import SparseMaps


class FastGenerator(nn.Module):
    """label ids (N or 1, 1, H, W) [+ instance ids] [+ z (N, z_dim)] -> image (N, 3, H', W') in [-1, 1]."""

    def __init__(self, generator: SPADEGenerator, variant: GraphVariant = GraphVariant("fast")):
        """`variant` (contract.GraphVariant, "fast" or "sparse"): its `mask_conv` ("conv" or "lookup"); `fused`: a
        block's mask convs as one conv, and gamma|beta as one conv per SPADE, split after (for GPUs: larger
        GEMMs, free slices), else one conv each, no split (for CPU providers, where a split costs a copy and
        layout reorders); the sparse graph computes the modulation maps densely only near boundaries
        (`models.sparse`; the dense form, with this mask conv, where more than `dense_above` of a level is band)."""
        super().__init__()
        if not variant.kind.ids_level:
            raise ValueError(f"FastGenerator builds an ids-level graph variant, not {variant.label!r}")
        if generator.training:
            raise ValueError("the fast graph is built from an eval-mode generator (fold_for_inference)")
        cfg = generator.cfg
        self.cfg, self.variant, self.sh, self.sw = cfg, variant, generator.sh, generator.sw
        self.mask_conv, self.sparse = variant.mask_conv, variant.graph == "sparse"
        self.fc = generator.fc  # the stem (a Linear of z, or a conv of the mask at the latent grid)
        # style models take one mask for N styles: their mask branch broadcasts over the batch
        self.blocks = nn.ModuleList(FastBlock(b, cfg, variant, broadcast=cfg.use_vae) for b in _blocks(generator))
        self.conv_img = generator.conv_img

    def forward(self, label: torch.Tensor, instance: torch.Tensor | None = None, z: torch.Tensor | None = None,
                *, latent_size: tuple[int, int] | None = None) -> torch.Tensor:
        cfg = self.cfg
        sh, sw = latent_size or (self.sh, self.sw)
        sizes = [(sh * 2 ** k, sw * 2 ** k) for k in range(cfg.num_up_layers + 1)]
        # the one-hot where a conv reads it: every level for the conv form (sparse: built where a block runs
        # dense), the stem's level for a mask stem
        dense_hot = self.mask_conv == "conv" and not self.sparse
        hot = set(range(len(sizes))) if dense_hot else set() if cfg.use_vae else {0}
        levels = mask_levels(label, instance, cfg, sizes, hot, self.conv_img.weight.dtype)
        x = self.fc(z).view(-1, 16 * cfg.ngf, self.sh, self.sw) if cfg.use_vae else self.fc(levels[0].one_hot)
        previous = 0
        for block, level in zip(self.blocks, block_levels(cfg)):
            for _ in range(level - previous):  # one nearest 2x upsampling per level, as the reference
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x, previous = block(x, levels[level]), level
        return torch.tanh(self.conv_img(F.leaky_relu(x, LEAKY_SLOPE)))


def block_levels(cfg: GeneratorConfig) -> list[int]:
    """The resolution level (0: the latent grid) of each residual block, in the reference's order: head_0,
    G_middle_0, G_middle_1 (one level further with "more" / "most"), then the up blocks one level each."""
    middle = 2 if cfg.num_upsampling_layers in ("more", "most") else 1
    ups = 5 if cfg.num_upsampling_layers == "most" else 4
    return [0, 1, middle] + [middle + 1 + k for k in range(ups)]


class MaskLevel:
    """The mask at one resolution: class ids (dontcare mapped to its channel) and instance edges, nearest-resized
    from the full-size maps (as the reference resizes its one-hot), and the one-hot when a conv reads it."""

    def __init__(self, ids: torch.Tensor, edges: torch.Tensor | None, one_hot: torch.Tensor | None):
        self.ids, self.edges, self.one_hot = ids, edges, one_hot


def mask_levels(label: torch.Tensor, instance: torch.Tensor | None, cfg: GeneratorConfig,
                sizes: list[tuple[int, int]], one_hot: set[int], dtype: torch.dtype) -> list[MaskLevel]:
    """The mask at each of `sizes`; the one-hot (+ edges) in `dtype` at the levels in `one_hot`."""
    if cfg.contain_dontcare_label:
        label = torch.where(label == DONTCARE_ID, torch.full_like(label, cfg.label_nc), label)
    # Nearest resizing of ids as floats (exact below 2**24) selects the very pixels the reference's resize of
    # the one-hot map selects: the same op on the same grid.
    ids = label.to(torch.float32)
    edges = instance_edges_tensor(instance).to(dtype) if cfg.use_instance else None
    levels = []
    for k, size in enumerate(sizes):
        level_ids = F.interpolate(ids, size=size, mode="nearest")
        level_edges = None if edges is None else F.interpolate(edges, size=size, mode="nearest")
        level_ids = level_ids.to(torch.int64)
        hot = one_hot_map(level_ids, level_edges, cfg.num_label_channels, dtype) if k in one_hot else None
        levels.append(MaskLevel(level_ids, level_edges, hot))
    return levels


def one_hot_map(ids: torch.Tensor, edges: torch.Tensor | None, classes: int, dtype: torch.dtype) -> torch.Tensor:
    """The one-hot map of int ids (N, 1, H, W) over `classes` channels in `dtype`, the edge map appended."""
    channels = torch.arange(classes, dtype=ids.dtype, device=ids.device).view(1, -1, 1, 1)
    hot = (ids == channels).to(dtype)
    return hot if edges is None else torch.cat([hot, edges.to(dtype)], dim=1)


class FastBlock(nn.Module):
    """A SPADEResnetBlock with its SPADE layers' mask convs as one conv (or lookup) when fused, one each
    otherwise, and each SPADE as conv + multiply-add; with `sparse`, the maps of that multiply-add computed by
    `SparseMaps` (this block's dense `maps` where its band is crowded)."""

    def __init__(self, block: SPADEResnetBlock, cfg: GeneratorConfig, variant: GraphVariant, broadcast: bool = False):
        super().__init__()
        mask_conv, fused, sparse = variant.mask_conv, variant.fused, variant.graph == "sparse"
        spades = [block.norm_0, block.norm_1] + ([block.norm_s] if block.learned_shortcut else [])
        shared = [s.mlp_shared[0] for s in spades]
        groups = [shared] if fused else [[c] for c in shared]  # convs computed as one
        self.lookup, self.classes = mask_conv == "lookup", cfg.num_label_channels
        self.masks = nn.ModuleList(_mask_conv([c.weight for c in g], [c.bias for c in g], shared[0], cfg, mask_conv)
                                   for g in groups)
        self.hidden = shared[0].out_channels
        self.mods = nn.ModuleList(Modulation(s, broadcast, fused) for s in spades)
        self.learned_shortcut = block.learned_shortcut
        # conv_0's output feeds norm_1 alone: norm_1's mean subtraction becomes part of conv_0's bias
        mean = self.mods[1].take_mean()
        conv_0 = block.conv_0
        bias = conv_0.bias.detach() if conv_0.bias is not None else torch.zeros(conv_0.out_channels)
        self.conv_0 = _conv_like(conv_0, conv_0.weight.detach(), bias - (0 if mean is None else mean.flatten()))
        self.conv_1 = block.conv_1
        self.conv_s = block.conv_s if block.learned_shortcut else None
        if sparse and cfg.spade_kernel_size != 3:
            raise ValueError(f"the sparse graph takes SPADE kernels of 3 (its band is two 3x3 windows wide); this "
                             f"model's spade_kernel_size is {cfg.spade_kernel_size}: export the fast graph")
        self.sparse = SparseMaps([(c.weight.detach(), c.bias.detach()) for c in shared],
                                 [m.weights() for m in self.mods], cfg.num_label_channels, cfg.use_instance,
                                 variant.dense_above) if sparse else None

    def forward(self, x: torch.Tensor, level: MaskLevel) -> torch.Tensor:
        if self.sparse is not None:
            return self.modulated(x, self.sparse(level.ids, level.edges, self.maps))
        return self.modulated(x, self.maps(level.ids, level.edges, level.one_hot))

    def modulated(self, x: torch.Tensor, maps: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The block's output given its modulation maps (A0, B0, A1, B1[, As, Bs])."""
        ab = [maps[2 * i:2 * i + 2] for i in range(len(self.mods))]
        x_s = self.conv_s(self.mods[2].apply(x, *ab[2])) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.mods[0].apply(x, *ab[0]), LEAKY_SLOPE))
        dx = self.conv_1(F.leaky_relu(self.mods[1].apply(dx, *ab[1]), LEAKY_SLOPE))
        return x_s + dx

    def maps(self, ids: torch.Tensor, edges: torch.Tensor | None = None,
             one_hot: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The modulation maps (A0, B0, A1, B1[, As, Bs]) computed densely; the one-hot is built from the ids where
        a conv reads it and none is given."""
        if not self.lookup and one_hot is None:
            one_hot = one_hot_map(ids, edges, self.classes, self.mods[0].convs[0].weight.dtype)
        hidden = [F.relu(m(ids, edges) if self.lookup else m(one_hot)) for m in self.masks]
        if len(hidden) != len(self.mods):
            hidden = [hidden[0][:, i * self.hidden:(i + 1) * self.hidden] for i in range(len(self.mods))]
        return tuple(t for mod, h in zip(self.mods, hidden) for t in mod.maps(h))


def _mask_conv(weights: list[torch.Tensor], biases: list[torch.Tensor], like: nn.Conv2d, cfg: GeneratorConfig,
               mask_conv: str) -> nn.Module:
    """The mask -> hidden conv of one or more SPADE layers (outputs concatenated), as a conv or a lookup."""
    weight, bias = torch.cat([w.detach() for w in weights]), torch.cat([b.detach() for b in biases])
    return MaskLookup(weight, bias, cfg) if mask_conv == "lookup" else _conv_like(like, weight, bias)


class Modulation(nn.Module):
    """One SPADE as (x - mean) * A + B with [A; B] = conv(h), the batch norm's scale folded into A's weights;
    or IN(x) * A + B. The mean stays a subtraction (x * A + (B - mean * A) would cancel catastrophically in
    float32 where a channel's mean is large against its spread) unless the caller folds it into the bias of the
    conv that produces x (`take_mean`). With `broadcast`, h may have batch 1 for an x of batch N: A and B are
    broadcast to x's batch without a copy (and without a guard on the batch sizes, so the exported graph takes
    both)."""

    def __init__(self, spade: SPADE, broadcast: bool = False, fused: bool = True):
        super().__init__()
        self.broadcast = broadcast
        norm = spade.param_free_norm
        gamma, beta = spade.mlp_gamma, spade.mlp_beta
        wg, bg = gamma.weight.detach().double(), gamma.bias.detach().double()
        if isinstance(norm, nn.BatchNorm2d):  # eval: fixed statistics, folded (in float64, rounded once)
            if norm.running_mean is None:
                raise ValueError("a batch norm without running statistics cannot be folded")
            s = 1 / torch.sqrt(norm.running_var.double() + norm.eps)
            wa, ba = s.view(-1, 1, 1, 1) * wg, s * (1 + bg)
            self.register_buffer("mean", norm.running_mean.detach().clone().float().view(1, -1, 1, 1))
            self.norm = None
        else:  # instance norm: statistics of x itself, kept
            wa, ba = wg, 1 + bg
            self.register_buffer("mean", None)
            self.norm = norm
        self.channels = gamma.out_channels
        convs = [(wa.float(), ba.float()), (beta.weight.detach(), beta.bias.detach())]
        if fused:  # [A; B] from one conv, split after
            convs = [(torch.cat([convs[0][0], convs[1][0]]), torch.cat([convs[0][1], convs[1][1]]))]
        self.convs = nn.ModuleList(_conv_like(gamma, w, b) for w, b in convs)

    def take_mean(self) -> torch.Tensor | None:
        """Hand the mean subtraction to the caller (who folds it into the conv producing x); None if none."""
        mean, self.mean = self.mean, None
        return mean

    def maps(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) from the hidden map."""
        if len(self.convs) == 1:
            ab = self.convs[0](h)
            return ab[:, :self.channels], ab[:, self.channels:]
        return self.convs[0](h), self.convs[1](h)

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The [A; B] conv's weight (2C, hidden, k, k) and bias (2C), whether computed as one conv or two."""
        return (torch.cat([c.weight.detach() for c in self.convs]), torch.cat([c.bias.detach() for c in self.convs]))

    def apply(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            x = self.norm(x)
        elif self.mean is not None:
            x = x - self.mean
        if not self.broadcast:
            return x * a + b
        # one mask for all N images, or one each: x viewed as (masks, N / masks, C, H, W) against (masks, 1, ...),
        # a broadcast over a literal 1, so neither copies nor a guard on the two batch sizes
        images, masks = x.shape[0], a.shape[0]
        torch._check(images % masks == 0)
        grouped = x.reshape(masks, images // masks, *x.shape[1:])
        return (grouped * a.unsqueeze(1) + b.unsqueeze(1)).reshape(x.shape)


class MaskLookup(nn.Module):
    """conv(onehot(ids) [+ edges], W, b) as gathers: one table per tap, with an all-zero row for the padding."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, cfg: GeneratorConfig):
        super().__init__()
        out, _, kh, kw = weight.shape
        classes = cfg.num_label_channels
        self.pad, self.kh, self.kw, self.classes = kh // 2, kh, kw, classes
        table = weight[:, :classes].permute(2, 3, 1, 0).reshape(kh * kw, classes, out)  # (taps, classes, out)
        table = torch.cat([table, torch.zeros(kh * kw, 1, out)], dim=1)  # row `classes`: the zero padding
        self.register_buffer("table", table.contiguous())
        self.register_buffer("bias", bias.view(1, -1, 1, 1).clone())
        self.register_buffer("edge_weight", weight[:, classes:].clone() if cfg.use_instance else None)

    def forward(self, ids: torch.Tensor, edges: torch.Tensor | None) -> torch.Tensor:
        n, _, h, w = ids.shape
        padded = F.pad(ids[:, 0], (self.pad, self.pad, self.pad, self.pad), value=self.classes)
        total = None
        for t in range(self.kh * self.kw):
            dy, dx = divmod(t, self.kw)
            rows = F.embedding(padded[:, dy:dy + h, dx:dx + w], self.table[t])  # (n, h, w, out)
            total = rows if total is None else total + rows
        out = total.permute(0, 3, 1, 2) + self.bias
        if self.edge_weight is not None:
            out = out + F.conv2d(edges, self.edge_weight, padding=self.pad)
        return out


def _conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """A conv with `conv`'s geometry and the given weights."""
    out = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, padding=conv.padding)
    out.weight.data.copy_(weight)
    out.bias.data.copy_(bias)
    return out.eval().requires_grad_(False)


def _blocks(generator: SPADEGenerator) -> list[SPADEResnetBlock]:
    return [generator.head_0, generator.G_middle_0, generator.G_middle_1, *generator.up_blocks()]
