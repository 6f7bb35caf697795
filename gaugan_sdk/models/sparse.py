"""Boundary-sparse SPADE: the modulation maps computed densely only near class and instance boundaries.

In a SPADE layer h = ReLU(conv3x3(mask)) and [A; B] = conv3x3(h) (the fast graph's folded gamma|beta). Where the
3x3 window of the resized mask around a pixel holds one class c, no instance edge and no pixel outside the image,
h there is a per-class constant h_c; where every pixel of the 3x3 window is such a pixel (the 5x5 window is
uniform in that sense), A and B are per-class constants too. Both tables are computed once, in float64, when the
module is built. So in region interiors SPADE is exactly CLADE (class-wise constants), and the 3x3 conv of h is
needed only on the *band*: pixels within two of a class or instance boundary or of the image border.

The sparse evaluation of one block's mask branch (`SparseMaps`):

1. band masks from a key map (class id; -1 at instance edges and outside the image): a pixel's 3x3 window is
   non-uniform where max != min or min < 0 (two max pools), the band is that dilated by one (a third);
2. h on the non-uniform pixels by lookup (nine table rows per pixel, as `MaskLookup`), every other h a table row:
   an index map over the zero-padded grid says which row of [h table; computed h] each pixel reads;
3. the band's 3x3 patches gathered from those rows, one matrix product per SPADE layer ((band, 9 hidden) x
   (9 hidden, 2C));
4. A and B: one gather per map from [A table; band values] through a second index map, then NHWC -> NCHW.

Ops: MaxPool, NonZero, Gather, ScatterND, MatMul, Transpose: ONNX Runtime runs them all on the CPU. The band's
size is known only at run time, so each block decides there: where the band covers more than the variant's
`dense_above` of its pixels (contract.GraphVariant; default contract.DENSE_ABOVE) (the gathers then cost more than the dense conv saves: measured by `python -m
export.sparse_benchmark --sweep`), the block computes its maps densely, as the fast graph does. Exported, that is
an ONNX If per block holding the two ways to compute the maps (`export.to_onnx` moves each branch's weights
into it, where ONNX Runtime's layout optimizer gives its convs the blocked kernels); the main convs stay
outside. A map that is all boundary (noise) costs the dense graph plus the band test.

Exact: the tables are the dense computation's values in real arithmetic (float64, rounded once), the band's
values the same sums in another order; tests/test_sparse.py holds it to the dense graph's float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import DENSE_ABOVE

TAPS = 9  # a 3x3 window


def band_masks(ids: torch.Tensor, edges: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(non-uniform 3x3 windows, band) as bool (N, 1, H, W): a pixel is non-uniform where its 3x3 window holds two
    classes, an instance edge or a pixel outside the image; the band is every pixel with a non-uniform pixel in its
    3x3 window (where the conv of h is not a per-class constant)."""
    key = ids.to(torch.float32)  # class ids are exact in float32 (far below 2**24)
    if edges is not None:
        key = torch.where(edges > 0, torch.full_like(key, -1.0), key)
    key = F.pad(key, (1, 1, 1, 1), value=-1.0)  # outside the image: -1, as an edge
    high = F.max_pool2d(key, 3, 1)
    low = -F.max_pool2d(-key, 3, 1)
    mixed = (high != low) | (low < 0)
    band = F.max_pool2d(mixed.to(torch.float32), 3, 1, padding=1) > 0
    return mixed, band


class SparseMaps(nn.Module):
    """A block's SPADE modulation maps (A, B per layer) from its label ids: dense where the band covers more than
    `threshold` of the pixels, sparse (module docstring) elsewhere.

    mask_convs: each layer's mask -> hidden conv (weight (hidden, classes [+ 1 edge], 3, 3), bias);
    map_convs: each layer's hidden -> [A; B] conv (weight (2C, hidden, 3, 3), bias), the batch norm folded in."""

    def __init__(self, mask_convs: list[tuple[torch.Tensor, torch.Tensor]],
                 map_convs: list[tuple[torch.Tensor, torch.Tensor]], classes: int, use_instance: bool,
                 threshold: float = DENSE_ABOVE):
        super().__init__()
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold={threshold!r}; accepted: a band fraction from 0 to 1")
        self.classes, self.threshold = classes, threshold
        hidden = mask_convs[0][0].shape[0]
        self.hidden, self.channels = hidden, [w.shape[0] // 2 for w, _ in map_convs]
        # h on non-uniform pixels: nine tap tables of all layers side by side (rows: tap * (classes + 1) + class;
        # row `classes` of each tap is the zero padding), the edge taps, the biases
        taps = torch.cat([torch.cat([w[:, :classes].permute(2, 3, 1, 0).reshape(TAPS, classes, hidden),
                                     torch.zeros(TAPS, 1, hidden)], dim=1) for w, _ in mask_convs], dim=2)
        self.register_buffer("tap_table", taps.reshape(TAPS * (classes + 1), -1).contiguous())
        self.register_buffer("tap_base", (torch.arange(TAPS) * (classes + 1)).view(1, TAPS))
        self.register_buffer("edge_taps", torch.cat([w[:, classes].reshape(hidden, TAPS).t() for w, _ in mask_convs],
                                                    dim=1).contiguous() if use_instance else None)
        self.register_buffer("mask_bias", torch.cat([b for _, b in mask_convs]))
        for i, ((wm, bm), (wab, bab)) in enumerate(zip(mask_convs, map_convs)):
            h_table = torch.relu(bm.double() + wm[:, :classes].double().sum((2, 3)).t())  # (classes, hidden)
            ab_table = bab.double() + torch.einsum("ochw,kc->ko", wab.double(), h_table)  # (classes, 2C)
            c = wab.shape[0] // 2
            self.register_buffer(f"h_table{i}", torch.cat([h_table.float(), torch.zeros(1, hidden)]))  # + padding
            self.register_buffer(f"a_table{i}", ab_table[:, :c].float().contiguous())
            self.register_buffer(f"b_table{i}", ab_table[:, c:].float().contiguous())
            self.register_buffer(f"patch_weight{i}", wab.permute(2, 3, 1, 0).reshape(TAPS * hidden, 2 * c).contiguous())
            self.register_buffer(f"patch_bias{i}", bab.clone())

    def forward(self, ids: torch.Tensor, edges: torch.Tensor | None,
                dense: Callable[..., tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        """The maps (A0, B0, A1, B1, ...) as (N, C, H, W): `dense(ids[, edges])` where the band is crowded, else
        computed sparsely."""
        mixed, band = band_masks(ids, edges)
        operands = (ids, mixed, band) + (() if edges is None else (edges,))
        crowded = band.to(torch.float32).mean() > self.threshold
        if not torch.compiler.is_compiling():  # eager: a Python branch
            return dense(ids, *operands[3:]) if crowded else self.maps(*operands)
        # traced (export): an If (export.to_onnx moves each branch's weights into it, where ONNX Runtime's layout
        # optimizer finds them); both branches give contiguous maps (the lookup's sum is channels-last)
        return torch.cond(crowded, lambda ids, mixed, band, *e: tuple(t.contiguous() for t in dense(ids, *e)),
                          self.maps, operands)

    def maps(self, ids: torch.Tensor, mixed: torch.Tensor, band: torch.Tensor,
             edges: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The maps (A0, B0, A1, B1, ...) as (N, C, H, W), computed sparsely (module docstring)."""
        n, _, h, w = ids.shape
        hp, wp, k = h + 2, w + 2, self.classes
        steps = torch.arange(3, device=ids.device)
        offsets = (steps.view(3, 1) * wp + steps).reshape(TAPS)  # the 3x3 window in padded flat coordinates
        padded = F.pad(ids[:, 0], (1, 1, 1, 1), value=k).reshape(-1)  # class per padded pixel; k: outside

        # h on the non-uniform pixels: nine table rows each (windows' top-left corners in padded coordinates)
        where = torch.nonzero(mixed.reshape(n, h, w))
        corner = where[:, 0] * (hp * wp) + where[:, 1] * wp + where[:, 2]
        windows = (corner.unsqueeze(1) + offsets).reshape(-1)
        rows = (padded.index_select(0, windows).view(-1, TAPS) + self.tap_base).reshape(-1)
        computed = self.tap_table.index_select(0, rows).view(-1, TAPS, self.tap_table.shape[1]).sum(1)
        if edges is not None:
            edge = F.pad(edges[:, 0], (1, 1, 1, 1)).reshape(-1).index_select(0, windows).view(-1, TAPS)
            computed = computed + edge @ self.edge_taps
        computed = torch.relu(computed + self.mask_bias)
        # each padded pixel's row of [h table; computed h]
        count = computed.shape[0]
        source = padded.index_put((corner + wp + 1,), torch.arange(count, device=ids.device) + (k + 1))

        # the band: 3x3 patches of h, one matrix product per layer, then A and B through a second index map
        where = torch.nonzero(band.reshape(n, h, w))
        corner = where[:, 0] * (hp * wp) + where[:, 1] * wp + where[:, 2]
        patch_rows = source.index_select(0, (corner.unsqueeze(1) + offsets).reshape(-1))
        flat = where[:, 0] * (h * w) + where[:, 1] * w + where[:, 2]
        pixel_rows = ids.reshape(-1).index_put((flat,), torch.arange(flat.shape[0], device=ids.device) + k)
        maps = []
        for i, c in enumerate(self.channels):
            hidden = computed[:, i * self.hidden:(i + 1) * self.hidden]
            table = torch.cat([getattr(self, f"h_table{i}"), hidden])
            patches = table.index_select(0, patch_rows).view(-1, TAPS * self.hidden)
            values = patches @ getattr(self, f"patch_weight{i}") + getattr(self, f"patch_bias{i}")
            for j, name in enumerate(("a_table", "b_table")):
                rows = torch.cat([getattr(self, f"{name}{i}"), values[:, j * c:(j + 1) * c]])
                maps.append(rows.index_select(0, pixel_rows).view(n, h, w, c).permute(0, 3, 1, 2).contiguous())
        return tuple(maps)
