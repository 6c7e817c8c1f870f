"""Exported C equals the Python core and reference byte for byte, on every target.

  host gcc (all committed models), host with -fsanitize=address,undefined,
  Cortex-M4 on qemu-system-arm -M mps2-an386 (semihosting), aarch64 Linux on
  qemu-aarch64. A missing toolchain skips with a message on a developer
  machine; under CI (CI=true) it is a failure, since .ci/run installs them.
"""

import filecmp
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import edgecnn
from edgecnn.errors import ArenaTooSmallError, UnsupportedOpError
from edgecnn.firmware_export import export
from modelbuilder import conv2d_model
from oracles import all_models, random_input, read

MODELS = all_models()
# Every op kind and I/O type once, plus the networks: what runs under emulation.
EMULATED = [p for p in MODELS if "/nets/" in p or "digits_" in p or any(
    k in p for k in ("conv_3x3_s2_same", "dw_multiplier2", "avgpool_2x2", "maxpool_3x3_s2",
                     "mcu/dw_multipliers", "mcu/dw_dilated", "mcu/fc_rows3",
                     "add_relu", "concat.", "pad.", "mean", "softmax", "logistic", "hard_swish",
                     "relu6_standalone", "_s2b", "fc_flatten_dynamic", "dilation2_valid",
                     "nchw_conv_fc."))]
INPUTS = 3
NETS = [p for p in EMULATED if "/nets/" in p]
# The SDOT build (Cortex-A76): the five networks and the convolutions' window kinds
DOTPROD = [p for p in EMULATED if "/nets/" in p and "_io_" not in p or any(
    k in p for k in ("conv_3x3_s2_same.", "dilation2_valid", "fc_flatten_dynamic"))]
TOOLS = {"host": ["cc"], "cortex-m4": ["arm-none-eabi-gcc", "qemu-system-arm"],
         "cortex-m3": ["arm-none-eabi-gcc", "qemu-system-arm"],
         "cortex-m7": ["arm-none-eabi-gcc", "qemu-system-arm"],
         "aarch64": ["aarch64-linux-gnu-gcc", "qemu-aarch64"]}


def require(target):
    missing = [t for t in TOOLS[target] if shutil.which(t) is None]
    if missing:
        message = f"{target}: {', '.join(missing)} not installed (.ci/install-toolchains.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """path -> (export dir, model, inputs file, expected output bytes); exported once."""
    cache = {}

    def get(path):
        if path not in cache:
            out = tmp_path_factory.mktemp(os.path.basename(path).replace(".", "_"))
            data = read(path)
            export(data, str(out), prefix="net")
            model = edgecnn.load(data)
            rng = np.random.default_rng(2)
            xs = [random_input(model.inputs[0], rng) for _ in range(INPUTS)]
            (out / "in.bin").write_bytes(b"".join(x.tobytes() for x in xs))
            core = [np.asarray(model.run(x, backend="core")) for x in xs]
            reference = [np.asarray(model.run(x, backend="reference")) for x in xs]
            for c, r in zip(core, reference):
                assert np.array_equal(c, r)
            cache[path] = (out, model, b"".join(c.tobytes() for c in core))
        return cache[path]
    return get


def build_and_run(out, target, run):
    make_target = {"host": "demo", "host-san": "demo-san", "cortex-m4": "demo-cm4",
                   "cortex-m3": "demo-cm3", "cortex-m7": "demo-cm7",
                   "aarch64": "demo-aarch64", "aarch64-dotprod": "demo-aarch64-dotprod"}[target]
    build = subprocess.run(["make", "-s", "-C", str(out), make_target], capture_output=True,
                           text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr  # -Werror: warnings fail too
    result = run(out / make_target)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return (out / f"out-{target}.bin").read_bytes()


def check(exported, path, target, command):
    out, model, want = exported(path)
    got = build_and_run(out, target, lambda exe: subprocess.run(
        command(exe, out), capture_output=True, text=True, timeout=300, cwd=str(out)))
    assert got == want, f"{path} on {target}: {_first_difference(got, want)}"


def _first_difference(got: bytes, want: bytes) -> str:
    if len(got) != len(want):
        return f"{len(got)} bytes written, {len(want)} expected"
    k = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
    return f"first differing byte {k}: {got[k]} != {want[k]}"


@pytest.mark.parametrize("path", MODELS)
def test_host(exported, path):
    require("host")
    check(exported, path, "host", lambda exe, out: [str(exe), "in.bin", "out-host.bin"])


@pytest.mark.parametrize("path", EMULATED)
def test_host_with_sanitizers(exported, path):
    require("host")
    check(exported, path, "host-san", lambda exe, out: [str(exe), "in.bin", "out-host-san.bin"])


@pytest.mark.parametrize("path", EMULATED)
def test_cortex_m4_on_qemu(exported, path):
    require("cortex-m4")
    check(exported, path, "cortex-m4", lambda exe, out: [
        "qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none",
        "-serial", "none", "-semihosting-config",
        "enable=on,target=native,arg=demo,arg=in.bin,arg=out-cortex-m4.bin", "-kernel", str(exe)])


def qemu_cortex_m(machine, target):
    return lambda exe, out: [
        "qemu-system-arm", "-M", machine, "-display", "none", "-monitor", "none",
        "-serial", "none", "-semihosting-config",
        f"enable=on,target=native,arg=demo,arg=in.bin,arg=out-{target}.bin", "-kernel", str(exe)]


@pytest.mark.parametrize("path", EMULATED)
def test_cortex_m3_without_dsp_on_qemu(exported, path):
    """The portable C paths of the Cortex-M kernels (no SXTB16/SMLAD: ARMv7-M without DSP)."""
    require("cortex-m3")
    check(exported, path, "cortex-m3", qemu_cortex_m("mps2-an385", "cortex-m3"))


@pytest.mark.parametrize("path", NETS)
def test_cortex_m7_on_qemu(exported, path):
    require("cortex-m7")
    check(exported, path, "cortex-m7", qemu_cortex_m("mps2-an500", "cortex-m7"))


def test_cortex_m_image_zero_fills_only_ram(tmp_path):
    """QEMU loads ELF segments at their physical (load) address and zero-fills MemSiz past
    FileSiz: a segment loaded in flash (below 0x20000000) must not carry zero-fill, or the
    arena's .bss is cleared over flash and, past 4 MiB, over the code (the image hangs)."""
    require("cortex-m4")
    export(read("examples/digits/digits_int8.tflite"), str(tmp_path), prefix="digits")
    build = subprocess.run(["make", "-s", "-C", str(tmp_path), "demo-cm4"], capture_output=True,
                           text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    headers = subprocess.run(["arm-none-eabi-readelf", "-lW", str(tmp_path / "demo-cm4")],
                             capture_output=True, text=True, check=True).stdout
    loads = [line.split() for line in headers.splitlines() if line.strip().startswith("LOAD")]
    assert loads
    for _, _, _, physical, file_size, memory_size, *_ in loads:
        if int(physical, 16) < 0x20000000:
            assert int(memory_size, 16) == int(file_size, 16), headers


@pytest.mark.parametrize("path", EMULATED)
def test_aarch64_on_qemu(exported, path):
    require("aarch64")
    check(exported, path, "aarch64", lambda exe, out: [
        "qemu-aarch64", "-cpu", "cortex-a72", str(exe), "in.bin", "out-aarch64.bin"])


@pytest.mark.parametrize("path", DOTPROD)
def test_aarch64_dotprod_on_qemu(exported, path):
    require("aarch64")
    check(exported, path, "aarch64-dotprod", lambda exe, out: [
        "qemu-aarch64", "-cpu", "cortex-a76", str(exe), "in.bin", "out-aarch64-dotprod.bin"])


@pytest.mark.parametrize("cin,stride", [(8, 1), (5, 2)])
def test_aarch64_conv_with_a_weight_of_minus_128(tmp_path, cin, stride):
    """A weight of -128 turns off the NEON kernels' int16 pairs: two products of -128 * -128
    overflow an int16 sum (the kernels pair depths d and d + 4, so both get -128, and so does
    a corner of the input). No committed model has one. Windows in place (cin 8) and im2col
    (cin 5, stride 2), padded."""
    require("aarch64")
    rng = np.random.default_rng(cin)
    weights = rng.integers(-128, 128, (20, 3, 3, cin)).astype(np.int8)
    weights.reshape(20, -1)[:, [0, 4]] = -128
    side = -(-9 // stride)
    data = conv2d_model((1, 9, 9, cin), weights, rng.integers(-999, 999, 20).astype(np.int32),
                        input_scale=0.05, input_zp=-3, weight_scales=[0.004] * 20,
                        output_scale=0.7, output_zp=5, output_hw=(side, side), padding="SAME",
                        stride=(stride, stride))
    model = edgecnn.load(data)
    x = rng.integers(-128, 128, (1, 9, 9, cin)).astype(np.int8)
    x[:, :4, :4] = -128
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    export(data, str(tmp_path), prefix="net")
    want = np.asarray(model.run(x, backend="reference")).tobytes()
    for target, cpu in (("aarch64", "cortex-a72"), ("aarch64-dotprod", "cortex-a76")):
        got = build_and_run(tmp_path, target, lambda exe: subprocess.run(
            ["qemu-aarch64", "-cpu", cpu, str(exe), "in.bin", f"out-{target}.bin"],
            capture_output=True, text=True, timeout=300, cwd=str(tmp_path)))
        assert got == want, f"{target}: {_first_difference(got, want)}"
    assert "ec_a64_conv_params" in (tmp_path / "net_model.c").read_text()


def test_only_aarch64_builds_compile_the_neon_layers(tmp_path):
    """Each build holds one copy of each layer's weights and one call per layer: the NEON
    kernels' on AArch64, the portable or Cortex-M ones elsewhere."""
    compilers = {"aarch64": ["aarch64-linux-gnu-gcc", "-mcpu=cortex-a72"],
                 "cortex-m4": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"],
                 "host": ["cc"]}
    for target in compilers:
        require(target)
    data = read("tests/models/nets/mobilenet_v1_025_96.tflite")
    export(data, str(tmp_path), prefix="net")
    layers = sum(n.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
                 for n in edgecnn.load(data).qgraph.nodes)
    for target, cc in compilers.items():
        text = subprocess.run(cc + ["-E", "-P", "net_model.c"], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout
        neon = len(re.findall(r"\bec_a64_(?:depthwise_)?conv2d_s8\(&", text))
        other = len(re.findall(
            r"\bec_(?:mcu_)?(?:conv2d|depthwise_conv2d|fully_connected(?:_narrow)?)_s8\(&", text))
        assert (neon, other) == ((layers, 0) if target == "aarch64" else (0, layers)), target
        assert text.count("net_op0_weights[") == 1, target


def test_export_is_deterministic(tmp_path):
    data = read("examples/digits/digits_int8.tflite")
    export(data, str(tmp_path / "a"), prefix="digits")
    export(data, str(tmp_path / "b"), prefix="digits")
    names = sorted(str(p.relative_to(tmp_path / "a")) for p in (tmp_path / "a").rglob("*")
                   if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names,
                                               shallow=False)
    assert mismatch == [] and errors == []
    header = (tmp_path / "a" / "digits_model.c").read_text()
    assert "sha256" in header and "edgecnn" in header


def test_arena_and_flash_limits_name_the_largest_layer(tmp_path):
    data = read("tests/models/nets/ds_cnn.tflite")
    with pytest.raises(ArenaTooSmallError, match=r"max-arena 1000; the largest layer is operator"):
        export(data, str(tmp_path / "a"), max_arena=1000)
    with pytest.raises(ArenaTooSmallError, match=r"max-flash 1000; the largest layer is operator"):
        export(data, str(tmp_path / "b"), max_flash=1000)


def test_float_requantization_profile_is_refused(tmp_path):
    model = edgecnn.load(read("tests/models/ops/fc_2d.tflite"), profile="litert-ref")
    with pytest.raises(UnsupportedOpError, match="profile='tflm'"):
        export(model, str(tmp_path))


def test_caller_arena_too_small_is_a_status_not_a_crash(tmp_path):
    require("host")
    export(read("examples/digits/digits_int8.tflite"), str(tmp_path), prefix="digits")
    (tmp_path / "small.c").write_text(
        '#include "digits_model.h"\n#include "ec_runtime.h"\n'
        "int main(void) {\n"
        "    static uint8_t arena[16];\n    static int8_t in[DIGITS_INPUT_SIZE];\n"
        "    static int8_t out[DIGITS_OUTPUT_SIZE];\n"
        "    if (digits_invoke_with_arena(arena, sizeof arena, in, out) != EC_ERROR_ARENA_TOO_SMALL) return 1;\n"
        "    if (digits_invoke_with_arena(NULL, 0, in, out) != EC_ERROR_NULL) return 2;\n"
        "    return digits_arena_size() == DIGITS_ARENA_SIZE ? 0 : 3;\n}\n")
    sources = [str(p) for p in tmp_path.glob("ec_*.c")] + [str(tmp_path / "digits_model.c")]
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-fsanitize=address,undefined", str(tmp_path / "small.c"), *sources,
                    "-o", str(tmp_path / "small"), "-lm"], check=True)
    assert subprocess.run([str(tmp_path / "small")]).returncode == 0


def test_size_and_instruction_count_reports(tmp_path):
    require("cortex-m4")
    export(read("examples/digits/digits_int8.tflite"), str(tmp_path), prefix="digits")
    size = subprocess.run(["make", "-s", "-C", str(tmp_path), "size"], capture_output=True,
                          text=True, timeout=300)
    assert size.returncode == 0, size.stderr
    assert "flash (text+rodata)" in size.stdout and "stack about" in size.stdout
    insns = subprocess.run(["make", "-s", "-C", str(tmp_path), "insns"], capture_output=True,
                           text=True, timeout=300)
    assert insns.returncode == 0, insns.stderr
    count = int(insns.stdout.split("(Cortex-M4): ")[1].split(",")[0])
    assert count > 1000  # the digits CNN does ~100k MACs


def test_c_export_knows_every_params_field():
    """A field added to (or removed from) a params record in edgecnn/params.py must be
    handled by the emitter: this fails until firmware_export/emit.py is updated."""
    import dataclasses
    from edgecnn import params
    from edgecnn.firmware_export.emit import EXPORTED_FIELDS
    records = {name: cls for name, cls in vars(params).items()
               if dataclasses.is_dataclass(cls) and name.endswith("Params")}
    assert set(records) == set(EXPORTED_FIELDS), "params records and the emitter's table differ"
    for name, cls in records.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        struct, known = EXPORTED_FIELDS[name]
        assert fields == known, f"{name}: fields {sorted(fields ^ known)} not in step with {struct}"
    header = open(os.path.join(os.path.dirname(__file__), "..", "firmware_export", "runtime",
                               "ec_runtime.h")).read()
    for struct, _ in EXPORTED_FIELDS.values():
        assert struct is None or f"}} {struct};" in header, struct


def test_bench_runs_the_exported_c_through_ctypes(tmp_path):
    """The benchmark's 'exported C (host)' runner computes what the core computes."""
    require("host")
    from edgecnn.tools.bench import exported_c_runner
    data = read("tests/models/nets/ds_cnn.tflite")
    model = edgecnn.load(data)
    x = random_input(model.inputs[0], np.random.default_rng(3))
    run, output = exported_c_runner(data, x, str(tmp_path))
    run()
    assert np.array_equal(output, model.run(x, backend="core"))
