"""A trained policy as an ONNX model for robots: raw observations in, the action the task gets out.

The graph computes what :meth:`esenas.policies.Policy.act` computes, tanh hidden layers and a
linear output, with the observation normalisation inside the model, then clips to the action
bounds where the rollouts do (MLP templates, see :mod:`esenas.rollout`).

Two forms:

* **compact** (the default): the numbers the topology stores and nothing else, so the file keeps
  the ES-ENAS compression. Chromatic (partition) weights are the P shared values and one small
  integer colour per edge, gathered into the matrices; edge topologies are the k kept values and
  their positions, scattered into zeros; Toeplitz and circulant matrices gather their
  n_out + n_in - 1 or max(n_out, n_in) numbers by an index the graph computes itself (Range,
  Sub, Mod), so the index costs no bytes. Normalisation stays a Sub and a Mul on the input:
  folding it into shared weights would unshare them.
* **dense**: one materialised matrix per layer, the normalisation folded into the first layer's
  weights and biases. The baseline the compact file is compared with.

All weight subgraphs take only initializers, so onnxruntime folds them into constants when it
loads the model: the compact form costs file bytes, not inference time. ``onnx`` is an optional
dependency (the ``export`` extra) and is imported only here, when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from esenas.policies import Policy

if TYPE_CHECKING:
    from onnx import ModelProto

F64 = npt.NDArray[np.float64]
#: ONNX opset 17 and IR version 8: what runtimes of recent years (onnxruntime >= 1.13) all load.
OPSET: Final = 17
IR_VERSION: Final = 8
FORMS: Final = ("compact", "dense")
DTYPES: Final = ("float32", "float64")
INPUT: Final = "observation"
OUTPUT: Final = "action"


class OnnxMissing(ImportError):
    """The ``onnx`` package is not installed."""


def check_installed() -> None:
    """Raise :class:`OnnxMissing` when ``onnx`` is not importable."""
    _onnx()


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise OnnxMissing("exporting to ONNX needs the onnx package: pip install 'esenas-cli[export]'") from exc
    return onnx


@dataclass
class _Graph:
    """Nodes and initializers under construction; names are unique per graph."""

    dtype: np.dtype[Any]
    nodes: list[Any] = field(default_factory=list)
    inits: list[Any] = field(default_factory=list)
    count: int = 0
    shared: dict[tuple[str, bytes], str] = field(default_factory=dict)

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}{self.count}"

    def const(self, base: str, value: npt.ArrayLike, dtype: Any = None) -> str:
        """An initializer; small integer constants (axes, shapes) are stored once and shared."""
        onnx = _onnx()
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        key = (arr.dtype.str + str(arr.shape), arr.tobytes())
        if arr.dtype == np.int64 and arr.size <= 2 and key in self.shared:
            return self.shared[key]
        name = self.name(base)
        self.inits.append(onnx.numpy_helper.from_array(arr, name))
        if arr.dtype == np.int64 and arr.size <= 2:
            self.shared[key] = name
        return name

    def node(self, op: str, inputs: list[str], base: str | None = None, **attrs: Any) -> str:
        """One node with one output; nodes go unnamed and tensor names stay short: in a compact
        edge policy the graph's text is a good part of the file."""
        onnx = _onnx()
        out = self.name(base or op.lower())
        self.nodes.append(onnx.helper.make_node(op, inputs, [out], **attrs))
        return out


def _index_dtype(top: int) -> type[np.unsignedinteger[Any]]:
    """The smallest unsigned type holding indices up to ``top``: 1 or 2 bytes per edge, not 8."""
    return np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32


def _stored_index(g: _Graph, base: str, idx: npt.ArrayLike) -> str:
    """An index initializer in its smallest type, cast to int64 in the graph (Gather/ScatterND need it)."""
    arr = np.asarray(idx, np.int64)
    small = g.const(base, arr, _index_dtype(int(arr.max()) if arr.size else 0))
    return g.node("Cast", [small], base + "_i64", to=_onnx().TensorProto.INT64)


def _range(g: _Graph, n: int) -> str:
    return g.node("Range", [g.const("zero", 0, np.int64), g.const("n", n, np.int64), g.const("one", 1, np.int64)])


def _structured_matrix(g: _Graph, policy: Policy, numbers: F64, n_out: int, n_in: int) -> str:
    """A Toeplitz or circulant (n_out x n_in) matrix gathered from its numbers by a computed index."""
    i = g.node("Unsqueeze", [_range(g, n_out), g.const("axis", [1], np.int64)])
    j = g.node("Unsqueeze", [_range(g, n_in), g.const("axis", [0], np.int64)])
    diff = g.node("Sub", [i, j])  # i - j, in [-(n_in - 1), n_out - 1]
    if policy.arch.kind == "toeplitz":
        idx = g.node("Add", [diff, g.const("shift", n_in - 1, np.int64)])
    else:  # circulant: (i - j) mod m, made non-negative first so every Mod convention agrees
        m = max(n_in, n_out)
        idx = g.node("Mod", [g.node("Add", [diff, g.const("m", m, np.int64)]), g.const("m", m, np.int64)])
    return g.node("Gather", [g.const("w", numbers), idx], "weight")


def _compact_matrices(g: _Graph, policy: Policy) -> list[str | None]:
    """Per block, the name of its (n_out x n_in) weight built from the stored numbers (None: no edges)."""
    arch = policy.arch
    w = policy.params[: arch.num_weights]
    out: list[str | None] = []
    if arch.kind == "partition":
        decisions = policy.topology.decisions
        if not decisions.size:  # no colouring yet: every weight is zero (as Architecture.weights)
            return [None] * len(arch.blocks)
        shared = g.const("shared_w", w)
        for b, start in zip(arch.blocks, arch.offsets, strict=False):
            colours = _stored_index(g, "colour", decisions[start : start + b.size].reshape(b.n_out, b.n_in))
            out.append(g.node("Gather", [shared, colours], "weight"))
        return out
    if arch.kind == "edges":
        # One scatter of the k kept values over every candidate edge, then a slice per block.
        kept = arch.kept_edges(policy.topology)
        if not kept.size:
            return [None] * len(arch.blocks)
        zeros = g.node("ConstantOfShape", [g.const("size", [arch.candidate_weights], np.int64)],
                       value=_onnx().numpy_helper.from_array(np.zeros(1, g.dtype)))
        pos = g.node("Unsqueeze", [_stored_index(g, "edge", kept), g.const("axis", [1], np.int64)])
        flat = g.node("ScatterND", [zeros, pos, g.const("kept_w", w[kept])], "w")
        for b, start in zip(arch.blocks, arch.offsets, strict=False):
            if not np.any((kept >= start) & (kept < start + b.size)):
                out.append(None)
                continue
            if b.size != arch.candidate_weights:
                part = g.node("Slice", [flat, g.const("start", [start], np.int64),
                                        g.const("end", [start + b.size], np.int64)], "w")
            else:
                part = flat
            out.append(g.node("Reshape", [part, g.const("shape", [b.n_out, b.n_in], np.int64)], "weight"))
        return out
    if arch.kind in ("toeplitz", "circulant"):
        at = 0
        for b in arch.blocks:
            size = b.n_in + b.n_out - 1 if arch.kind == "toeplitz" else max(b.n_in, b.n_out)
            out.append(_structured_matrix(g, policy, w[at : at + size], b.n_out, b.n_in))
            at += size
        return out
    return [g.const("weight", m) for m in _matrices(policy)]  # dense: the matrices are the numbers


def _matrices(policy: Policy) -> list[F64]:
    mats, _ = policy.arch.weights(policy.params, policy.topology)
    return mats


def build(policy: Policy, *, form: str = "compact", dtype: str = "float32",
          bounds: tuple[npt.ArrayLike, npt.ArrayLike] | None = None, name: str = "esenas_policy",
          doc: str = "") -> ModelProto:
    """The ONNX model of ``policy``: input ``observation`` (batch x obs_dim), output ``action``.

    ``bounds`` (low, high) clips the output as the rollouts do for MLPs; None leaves it linear.
    """
    if form not in FORMS:
        raise ValueError(f"form: must be one of {', '.join(FORMS)}; got {form!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: must be one of {', '.join(DTYPES)}; got {dtype!r}")
    onnx = _onnx()
    g = _Graph(np.dtype(dtype))
    arch = policy.arch
    inv_std = 1.0 / policy.obs_std
    biases = np.split(policy.params[arch.num_weights :], np.cumsum(arch.layers[1:-1]))
    if form == "dense":
        # (x - mean) / std feeds every block leaving the input: fold it into those blocks' weights and
        # the biases of their destinations, so the model starts with a plain Gemm.
        mats: list[str | None] = []
        biases = [b.copy() for b in biases]
        for blk, m in zip(arch.blocks, _matrices(policy), strict=True):
            if not np.any(m):
                mats.append(None)
                continue
            if blk.src == 0:
                biases[blk.dst - 1] -= m @ (policy.obs_mean * inv_std)
                m = m * inv_std[None, :]
            mats.append(g.const("weight", m))
        hs = [INPUT]
    else:
        mats = _compact_matrices(g, policy)
        # Sub first, as Policy.act: near the mean it is exact in float32, where obs * a + b cancels.
        x = g.node("Sub", [INPUT, g.const("obs_mean", policy.obs_mean)])
        hs = [g.node("Mul", [x, g.const("inv_obs_std", inv_std)], "normalised")]
    last = len(arch.layers) - 1
    for j in range(1, last + 1):
        z = g.const("bias", biases[j - 1])
        terms = [(blk.src, m) for blk, m in zip(arch.blocks, mats, strict=True) if blk.dst == j and m is not None]
        if not terms:  # no edge reaches layer j: its value is its bias, one row per observation
            batch = g.node("Shape", [INPUT], "batch", start=0, end=1)
            shape = g.node("Concat", [batch, g.const("width", [arch.layers[j]], np.int64)], "shape", axis=0)
            z = g.node("Expand", [z, shape])
        for src, weight in terms:
            z = g.node("Gemm", [hs[src], weight, z], "layer", transB=1)
        hs.append(z if j == last else g.node("Tanh", [z], "hidden"))
    out = hs[-1]
    if bounds is not None:
        low, high = bounds
        out = g.node("Min", [g.node("Max", [out, g.const("low", low)]), g.const("high", high)], "clipped")
    g.nodes.append(onnx.helper.make_node("Identity", [out], [OUTPUT], name=OUTPUT))
    elem = onnx.helper.np_dtype_to_tensor_dtype(g.dtype)
    graph = onnx.helper.make_graph(
        g.nodes, name,
        [onnx.helper.make_tensor_value_info(INPUT, elem, ["batch", arch.layers[0]])],
        [onnx.helper.make_tensor_value_info(OUTPUT, elem, ["batch", arch.layers[-1]])],
        g.inits,
    )
    model: ModelProto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="esenas-fleet", doc_string=doc)
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def to_bytes(model: ModelProto) -> bytes:
    return bytes(model.SerializeToString())
