"""Bad input gets its own clear EdgecnnError: never a crash, a hang or a wrong answer.

The corruptions are made at known byte positions of a valid model, found
with the flatbuffer schema package (the `tflite` package), so each test
corrupts exactly one field.
"""

import struct

import numpy as np
import pytest
import tflite

import edgecnn
from edgecnn import (DTypeError, EdgecnnError, ModelFormatError, ShapeError,
                     UnsupportedOpError)
from edgecnn.importer.tflite import load_graph
from oracles import read

MODEL = "examples/digits/digits_int8.tflite"


@pytest.fixture(scope="module")
def model_bytes():
    return read(MODEL)


def _operator(buf, i=0):
    return tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0).Operators(i)


def _first_operator(buf, condition):
    sub = tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0)
    for i in range(sub.OperatorsLength()):
        if condition(sub.Operators(i)):
            return i, sub.Operators(i)
    raise AssertionError("no operator satisfies the condition")


def _field_position(table, vtable_offset):
    """Byte position of a scalar field of a flatbuffer table."""
    o = table._tab.Offset(vtable_offset)
    assert o, "field not present in this model"
    return table._tab.Pos + o


def _vector_position(table, vtable_offset, j):
    o = table._tab.Offset(vtable_offset)
    assert o, "vector not present in this model"
    return table._tab.Vector(o) + 4 * j


def _patch_int32(buf, pos, value):
    data = bytearray(buf)
    struct.pack_into("<i", data, pos, value)
    return bytes(data)


def test_valid_model_loads(model_bytes):
    model = edgecnn.load(model_bytes)
    assert model.inputs and model.outputs


def test_empty_and_tiny_files():
    for data in (b"", b"TFL3", b"\x00" * 7):
        with pytest.raises(ModelFormatError, match="too short"):
            edgecnn.load(data)


def test_missing_identifier(model_bytes):
    data = bytearray(model_bytes)
    data[4:8] = b"ONNX"
    with pytest.raises(ModelFormatError, match="TFL3"):
        edgecnn.load(bytes(data))


def test_every_truncation_is_a_model_format_error(model_bytes):
    lengths = sorted(set(np.linspace(0, len(model_bytes) - 1, 200).astype(int).tolist()))
    for n in lengths:
        with pytest.raises(EdgecnnError):
            edgecnn.load(model_bytes[:n])


def test_random_bytes_are_rejected():
    rng = np.random.default_rng(0)
    for size in (8, 64, 1000, 50_000):
        for _ in range(20):
            data = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
            data[4:8] = b"TFL3"  # get past the identifier check, into the parser
            with pytest.raises(ModelFormatError):
                edgecnn.load(bytes(data))


def test_random_bit_flips_never_crash(model_bytes):
    """A flipped bit either still loads (e.g. inside weights) or raises EdgecnnError."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        data = bytearray(model_bytes)
        pos = int(rng.integers(0, len(data)))
        data[pos] ^= 1 << int(rng.integers(0, 8))
        try:
            model = edgecnn.load(bytes(data))
        except EdgecnnError:
            continue
        x = np.zeros(model.inputs[0].shape, model.inputs[0].dtype)
        model.run(x)


def test_opcode_index_out_of_range(model_bytes):
    # flatbuffers omits fields equal to their default (0): take an op that stores it
    i, op = _first_operator(model_bytes, lambda op: op._tab.Offset(4) != 0)
    pos = _field_position(op, 4)  # Operator.opcode_index
    with pytest.raises(ModelFormatError, match=f"operator {i}: opcode index 200 out of range"):
        edgecnn.load(_patch_int32(model_bytes, pos, 200))


def test_operator_code_is_read_as_litert_reads_it(model_bytes):
    """An operator code whose builtin_code and deprecated_builtin_code disagree names the
    larger of the two, as LiteRT reads it (the `tflite` package's accessor prefers the
    deprecated field below 127: edgecnn read a different operator than LiteRT runs).
    The oracle is LiteRT's own list of the model's operators."""
    from oracles import require_litert
    require_litert()
    from ai_edge_litert.interpreter import Interpreter
    code = tflite.Model.GetRootAsModel(model_bytes, 0).OperatorCodes(0)
    pos = _field_position(code, 10)   # OperatorCode.builtin_code (int32)
    stored = code.DeprecatedBuiltinCode()
    for builtin in (stored + 1, stored - 1):
        data = _patch_int32(model_bytes, pos, builtin)
        litert_ops = [op["op_name"] for op in Interpreter(model_content=data)._get_ops_details()]
        graph = load_graph(data)
        assert [node.op for node in graph.nodes] == litert_ops[:len(graph.nodes)], builtin


def test_tensor_index_out_of_range(model_bytes):
    pos = _vector_position(_operator(model_bytes), 6, 0)  # Operator.inputs[0]
    with pytest.raises(ModelFormatError, match=r"operator 0 .*tensor index 99999 out of range"):
        edgecnn.load(_patch_int32(model_bytes, pos, 99999))


def test_declared_model_output_shape_disagrees(model_bytes):
    """Intermediate shapes are recomputed (as TFLite does); a model output must agree."""
    sub = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0)
    out = sub.Tensors(sub.Outputs(0))
    pos = _vector_position(out, 4, out.ShapeLength() - 1)  # Tensor.shape[-1]
    with pytest.raises(ModelFormatError, match="declared with shape"):
        edgecnn.load(_patch_int32(model_bytes, pos, out.Shape(out.ShapeLength() - 1) + 1))


def test_weight_shape_disagrees_with_its_data(model_bytes):
    sub = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0)
    codes = tflite.Model.GetRootAsModel(model_bytes, 0)
    _, op = _first_operator(model_bytes, lambda op: codes.OperatorCodes(op.OpcodeIndex())
                            .BuiltinCode() == tflite.BuiltinOperator.CONV_2D)
    weights = sub.Tensors(op.Inputs(1))
    pos = _vector_position(weights, 4, 0)  # Tensor.shape[0]: output channels
    with pytest.raises(ModelFormatError, match="constant data is .* bytes but shape"):
        edgecnn.load(_patch_int32(model_bytes, pos, weights.Shape(0) + 1))


def test_negative_scale(model_bytes):
    sub = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0)
    op = _operator(model_bytes)
    q = sub.Tensors(op.Outputs(0)).Quantization()
    pos = _vector_position(q, 8, 0)  # QuantizationParameters.scale[0]
    data = bytearray(model_bytes)
    struct.pack_into("<f", data, pos, -1.0)
    with pytest.raises(ModelFormatError, match="finite and positive"):
        edgecnn.load(bytes(data))


def test_unsupported_op_lists_every_one(model_bytes):
    m = tflite.Model.GetRootAsModel(model_bytes, 0)
    data = bytearray(model_bytes)
    # Turn every operator code into TANH (builtin 28), which edgecnn does not run.
    for i in range(m.OperatorCodesLength()):
        code = m.OperatorCodes(i)
        for vt in (4, 10):  # deprecated_builtin_code (int8), builtin_code (int32)
            o = code._tab.Offset(vt)
            if o:
                if vt == 4:
                    struct.pack_into("<b", data, code._tab.Pos + o, 28)
                else:
                    struct.pack_into("<i", data, code._tab.Pos + o, 28)
    with pytest.raises(UnsupportedOpError) as info:
        edgecnn.load(bytes(data))
    n_ops = m.Subgraphs(0).OperatorsLength()
    assert len(info.value.unsupported) == n_ops
    assert [i for i, _ in info.value.unsupported] == list(range(n_ops))
    assert "TANH" in str(info.value)


def test_wrong_input_shape_dtype_and_values(model_bytes):
    model = edgecnn.load(model_bytes)
    info = model.inputs[0]
    good = np.zeros(info.shape, info.dtype)
    model.run(good)
    with pytest.raises(ShapeError, match="expected shape"):
        model.run(np.zeros((1,) + info.shape, info.dtype))
    with pytest.raises(DTypeError, match="expected dtype"):
        model.run(good.astype(np.float64))
    with pytest.raises(ShapeError, match="takes 1 input"):
        model.run([good, good])
    with pytest.raises(DTypeError, match="numpy array"):
        model.run(good.tolist())


def test_nan_in_float_input_is_rejected():
    model = edgecnn.load(read("examples/digits/digits_float.tflite"))
    info = model.inputs[0]
    x = np.zeros(info.shape, np.float32)
    x.reshape(-1)[3] = np.nan
    with pytest.raises(DTypeError, match="NaN"):
        model.run(x)


def test_missing_model_file():
    with pytest.raises(EdgecnnError, match="cannot read model file"):
        edgecnn.load("/nonexistent/model.tflite")


def test_unknown_profile_and_backend(model_bytes):
    with pytest.raises(EdgecnnError, match="unknown profile"):
        edgecnn.load(model_bytes, profile="fastest")
    model = edgecnn.load(model_bytes)
    x = np.zeros(model.inputs[0].shape, model.inputs[0].dtype)
    with pytest.raises(edgecnn.BackendUnavailableError, match="unknown backend"):
        model.run(x, backend="gpu")
