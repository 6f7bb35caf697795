"""Graph surgery on a Q/DQ ONNX: take single convolutions back out of int8.

The quantizer writes, for every quantized Conv, `x -> QuantizeLinear -> DequantizeLinear -> Conv` on its input
and `DequantizeLinear(int8 W)`, `DequantizeLinear(int32 B)` on its weights. `keep_in_float` rewires chosen convs
to their float input and float weights, either in fp32 (to measure one layer's int8 error in isolation) or in
fp16 (`Cast -> Conv(fp16 W, B) -> Cast`: the mixed int8/fp16 artifact, which TensorRT runs as written), then
drops the Q/DQ nodes and initializers nothing uses any more. Each edit is exact: the rewired conv computes what
the float model computes there (fp16: with fp16 rounding of its input and weights).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT_TYPES = {"fp32": (TensorProto.FLOAT, np.float32), "fp16": (TensorProto.FLOAT16, np.float16)}


def float_conv_weights(model: onnx.ModelProto) -> dict[str, list[np.ndarray]]:
    """Conv name -> its float [W] or [W, B] initializers, from the float model the Q/DQ one was made from."""
    init = {i.name: i for i in model.graph.initializer}
    return {n.name: [numpy_helper.to_array(init[name]) for name in n.input[1:3] if name in init]
            for n in model.graph.node if n.op_type == "Conv" and n.input[1] in init}


def conv_labels(model: onnx.ModelProto) -> dict[str, str]:
    """Conv node name -> a name people know: its weight's module path ("up_3.norm_0.mlp_gamma")."""
    return {n.name: n.input[1].removesuffix(".weight").removeprefix("generator.")
            for n in model.graph.node if n.op_type == "Conv"}


def quantized_convs(model: onnx.ModelProto) -> list[str]:
    """Names of the convs whose weights come from a DequantizeLinear, in graph order."""
    producers = _producers(model)
    return [n.name for n in model.graph.node if n.op_type == "Conv"
            and getattr(producers.get(n.input[1]), "op_type", None) == "DequantizeLinear"]


def keep_in_float(model: onnx.ModelProto, weights: dict[str, list[np.ndarray]], names: list[str] | set[str],
                  dtype: str = "fp16") -> onnx.ModelProto:
    """A copy of the Q/DQ `model` in which the convs `names` run in float (`dtype` "fp32" or "fp16")."""
    if dtype not in FLOAT_TYPES:
        raise ValueError(f"dtype {dtype!r}; accepted: {', '.join(FLOAT_TYPES)}")
    names = set(names)
    missing = names - set(weights)
    if missing:
        raise ValueError(f"no float weights for the convs {sorted(missing)}")
    onnx_type, np_type = FLOAT_TYPES[dtype]
    out = onnx.ModelProto()
    out.CopyFrom(model)
    producers = _producers(out)
    nodes = []
    for node in out.graph.node:
        if node.op_type != "Conv" or node.name not in names:
            nodes.append(node)
            continue
        source = _float_source(node.input[0], producers)
        params = []
        for k, array in enumerate(weights[node.name]):
            params.append(f"{node.name}.float_{'WB'[k]}.{dtype}")
            out.graph.initializer.append(numpy_helper.from_array(array.astype(np_type), params[-1]))
        if dtype == "fp32":
            node.input[:] = [source, *params]
            nodes.append(node)
            continue
        result = node.output[0]
        nodes.append(helper.make_node("Cast", [source], [f"{node.name}.input.fp16"], to=onnx_type,
                                      name=f"{node.name}.cast_in"))
        node.input[:] = [f"{node.name}.input.fp16", *params]
        node.output[0] = f"{node.name}.output.fp16"
        nodes.append(node)
        nodes.append(helper.make_node("Cast", [node.output[0]], [result], to=TensorProto.FLOAT,
                                      name=f"{node.name}.cast_out"))
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    _drop_unused(out)
    return out


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {name: node for node in model.graph.node for name in node.output}


def _float_source(tensor: str, producers: dict[str, onnx.NodeProto]) -> str:
    """The float tensor behind `tensor` = DequantizeLinear(QuantizeLinear(x)), or `tensor` itself."""
    dq = producers.get(tensor)
    if dq is None or dq.op_type != "DequantizeLinear":
        return tensor
    q = producers.get(dq.input[0])
    return q.input[0] if q is not None and q.op_type == "QuantizeLinear" else tensor


def _drop_unused(model: onnx.ModelProto) -> None:
    """Remove nodes whose outputs nothing reads (repeatedly), then initializers nothing reads."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = outputs | {name for node in graph.node for name in node.input}
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(keep)
    used = {name for node in graph.node for name in node.input}
    keep_init = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_init)
    keep_info = [v for v in graph.value_info if v.name in used or v.name in outputs]
    del graph.value_info[:]
    graph.value_info.extend(keep_info)
