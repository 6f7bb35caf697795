"""Multiply-accumulates of an exported ONNX graph, counted from the file itself: the graph's inputs fixed to
concrete shapes, ONNX Runtime's symbolic shape inference (ONNX's own stops at the shape arithmetic of the
broadcasting graph), then every Conv (N * Cout * Hout * Wout * Cin/groups * kh * kw), Gemm
and MatMul (M * N * K). Lookups (Gather), elementwise ops and resizes count 0: they move memory, not MACs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx


def onnx_macs(path: str | Path, input_shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """{"Conv": ..., "Gemm": ..., "MatMul": ..., "total": ...} for one run at `input_shapes` (every input)."""
    model = onnx.load(str(path))
    if any(node.op_type in ("If", "Loop", "Scan") for node in model.graph.node):
        raise ValueError(f"{path}: control flow (If / Loop / Scan): what runs depends on the data, so its MACs are "
                         f"not a property of the file (the sparse graph's: python -m export.sparse_benchmark)")
    for value in model.graph.input:
        if value.name not in input_shapes:
            continue
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, input_shapes[value.name]):
            dim.Clear()
            dim.dim_value = int(size)
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    shapes.update({i.name: list(i.dims) for i in inferred.graph.initializer})
    counts = {"Conv": 0, "Gemm": 0, "MatMul": 0}
    for node in inferred.graph.node:
        if node.op_type not in counts:
            continue
        out, weight = shapes.get(node.output[0]), shapes.get(node.input[1])
        if not out or not weight or 0 in out or 0 in weight:
            raise ValueError(f"{path}: no inferred shape for {node.op_type} {node.name!r}; cannot count its MACs")
        if node.op_type == "Conv":  # weight (Cout, Cin / groups, kh, kw)
            reduced = int(np.prod(weight[1:]))
        elif node.op_type == "Gemm":  # B (K, N), or (N, K) with transB
            reduced = weight[1] if any(a.name == "transB" and a.i for a in node.attribute) else weight[0]
        else:  # MatMul: B (..., K, N)
            reduced = weight[-2]
        counts[node.op_type] += int(np.prod(out)) * int(reduced)
    counts["total"] = sum(counts.values())
    return counts
