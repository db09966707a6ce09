"""all-MiniLM-L6-v2's forward pass as an ONNX graph, run by ONNX Runtime: for embedding many texts.

The graph is built here from the same weights as rag/minilm.py's NumPy pass (the attention scale
folded into the query's weights, exact erf GELU), step for step, so the two give the same vectors
(within 2e-7 of each other and of sentence-transformers; tested). Nothing is exported or
downloaded: the `onnx` package only writes the graph, in memory.

Why two engines: on wiki chunks ONNX Runtime embedded 76 texts per CPU-second where the NumPy pass
did 60 (benchmarks/embedding.py, same run), a fifth off building a collection; but importing it
and preparing the session takes 0.6 s, which a question (one short text) must not pay. So many
texts at once go through this module, and questions through the NumPy pass.
"""

from __future__ import annotations

import numpy as np

from .minilm import MiniLM, padded

_OPSET = 20  # Gelu (exact, erf-based) and LayerNormalization are standard operators from here


def build_graph(model: MiniLM) -> bytes:
    """The serialised ONNX model: token ids, positions and the attention bias in, the last hidden
    states out (pooling stays in NumPy, as in MiniLM)."""
    from onnx import TensorProto, helper, numpy_helper

    w = model.w
    width = w["embeddings.word_embeddings.weight"].shape[1]
    heads, head_width = model.heads, width // model.heads
    initializers: list = []
    nodes: list = []

    def const(name: str, value) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def linear(x: str, prefix: str, out: str) -> str:
        product = node("MatMul", [x, const(f"{prefix}.weight", w[f"{prefix}.weight"])], f"{out}.product")
        return node("Add", [product, const(f"{prefix}.bias", w[f"{prefix}.bias"])], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, const(f"{prefix}.weight", w[f"{prefix}.weight"]),
                                           const(f"{prefix}.bias", w[f"{prefix}.bias"])], out, axis=-1, epsilon=1e-12)

    words = node("Gather", [const("word_embeddings", w["embeddings.word_embeddings.weight"]), "input_ids"], "words")
    positions = node("Gather", [const("position_embeddings", w["embeddings.position_embeddings.weight"]), "positions"], "where")
    x = node("Add", [words, positions], "embedded.1")
    x = node("Add", [x, const("token_type", w["embeddings.token_type_embeddings.weight"][0])], "embedded")
    x = layer_norm(x, "embeddings.LayerNorm", "layer.0.in")
    split_heads = const("split_heads", np.array([0, 0, heads, head_width], dtype=np.int64))
    merge_heads = const("merge_heads", np.array([0, 0, width], dtype=np.int64))
    for layer in range(model.layers):
        p, n = f"encoder.layer.{layer}.", f"layer.{layer}"
        qkv_weight, qkv_bias = w[f"{p}attention.self.qkv.weight"], w[f"{p}attention.self.qkv.bias"]

        def heads(i: int, part: str) -> str:  # (batch, heads, length, head_width)
            # Three products, not the NumPy pass's one of three times the width: split by a 5-D
            # transpose, that ran 5% slower here.
            columns = slice(i * width, (i + 1) * width)
            product = node("MatMul", [x, const(f"{n}.{part}.weight", np.ascontiguousarray(qkv_weight[:, columns]))], f"{n}.{part}.product")
            biased = node("Add", [product, const(f"{n}.{part}.bias", qkv_bias[columns])], f"{n}.{part}.biased")
            split = node("Reshape", [biased, split_heads], f"{n}.{part}.split")
            return node("Transpose", [split], f"{n}.{part}", perm=[0, 2, 1, 3])

        query, key, value = heads(0, "q"), heads(1, "k"), heads(2, "v")
        key = node("Transpose", [key], f"{n}.k.t", perm=[0, 1, 3, 2])
        scores = node("MatMul", [query, key], f"{n}.scores")  # the scale is folded into the query's weights
        scores = node("Add", [scores, "attention_bias"], f"{n}.scores.masked")
        attention = node("Softmax", [scores], f"{n}.attention", axis=-1)
        context = node("MatMul", [attention, value], f"{n}.context")
        context = node("Transpose", [context], f"{n}.context.t", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, merge_heads], f"{n}.context.merged")
        attended = linear(context, f"{p}attention.output.dense", f"{n}.attended")
        attended = node("Add", [attended, x], f"{n}.attended.residual")
        attended = layer_norm(attended, f"{p}attention.output.LayerNorm", f"{n}.attended.norm")
        hidden = linear(attended, f"{p}intermediate.dense", f"{n}.hidden")
        hidden = node("Gelu", [hidden], f"{n}.gelu", approximate="none")
        out = linear(hidden, f"{p}output.dense", f"{n}.out")
        out = node("Add", [out, attended], f"{n}.out.residual")
        x = layer_norm(out, f"{p}output.LayerNorm", f"layer.{layer + 1}.in")
    nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))

    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
         helper.make_tensor_value_info("positions", TensorProto.INT64, ["length"]),
         helper.make_tensor_value_info("attention_bias", TensorProto.FLOAT, ["batch", 1, 1, "length"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "length", width])],
        initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], ir_version=9).SerializeToString()


class OnnxMiniLM:
    """Encodes batches of token ids like `MiniLM._encode`, through ONNX Runtime, one thread per
    session run (several batches run at once from the embedder's threads)."""

    def __init__(self, model: MiniLM):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # its warnings are not the user's business
        # ONNX Runtime would fuse each residual Add into the LayerNormalization after it: measured,
        # that fused kernel took 8x as long as the two it replaces (20 against 2.6 ms a batch).
        self.session = onnxruntime.InferenceSession(build_graph(model), options, providers=["CPUExecutionProvider"],
                                                    disabled_optimizers=["SkipLayerNormFusion"])

    def encode(self, batch_ids: list[list[int]]) -> np.ndarray:
        input_ids, mask = padded(batch_ids)
        length = input_ids.shape[1]
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        (hidden,) = self.session.run(None, {"input_ids": input_ids, "positions": np.arange(length, dtype=np.int64),
                                            "attention_bias": bias})
        pooled = (hidden * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)
