"""A structure-aware fuzzer for edgecnn: hostile models through load, core and reference.

    python tools/fuzz.py --seconds 60                 # a short run (what CI does)
    python tools/fuzz.py --executions 1000000 --out fuzz-out   # the long mode (README)
    python tools/fuzz.py --replay fuzz-out/loadable.txt --asan  # loadable mutants, ASan core

Each execution takes one seed model (every committed .tflite of tests/models and
examples), mutates it and runs it the way an attacker or a careless caller would:
`edgecnn.load` under a random profile and tight resource limits, then, if the model
loads, one inference with the reference and with the core under every instruction-set
level this CPU has (one thread, then two on one random level), compared byte for byte.
The core compiles the model once per weight layout and thread count and runs that
program under each level (the kernels are picked when they run, see
core_backend.weight_layout). Seeds: the small models share 99.5 % of the mutants and
the networks 0.5 % (--nets-weight): a network mutant that loads costs about 30 small
ones, and 0.5 % of a long campaign is still thousands of network mutants.

Mutations know the .tflite schema: the byte position of every shape dimension, tensor
type, buffer index, scale, zero point, quantized dimension, opcode, operator input and
output, vector length and builtin option (stride, dilation, padding, filter, activation,
axis, beta, keep_dims, depth multiplier...) is found once per seed with the flatbuffer
accessors, and a mutant overwrites one to three of them with interesting values
(0, -1, 2^31 - 1, 2^24, NaN, 1e-45, zero points of 128 or 300...), small steps or
random bits; or fills a constant buffer with extreme weights; or flips bits anywhere;
or truncates the file. Mutant i of seed s is a function of (s, i) only, so any finding
can be regenerated from its index.

Findings (written to --out with the mutant and a description):
  crash      the worker process died (a signal, or a non-zero exit)
  hang       no progress within --timeout seconds
  exception  anything but an EdgecnnError, at load or at run
  unchecked  an EdgecnnError raised by lowering's last-resort net (a check is missing)
  run-error  a model that loaded fails to run (validation should have refused it)
  mismatch   core != reference
Isolation: workers are forked processes that run many inputs each under a memory limit
(resource.setrlimit); the supervisor re-forks after a crash or a hang and carries on
with the next input. --asan builds the core with AddressSanitizer and
UndefinedBehaviorSanitizer (as tests/test_core_sanitizers.py does) and runs under it.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder would come first on sys.path and its inspect.py would
# shadow the standard library's.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import glob  # noqa: E402
import math  # noqa: E402
import mmap  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# -- the mutations ------------------------------------------------------------------------

INTERESTING_INT = [0, 1, -1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 127, 128, -128,
                   -129, 255, 256, 1000, 4096, 65535, 65536, 2**20, 2**24, 2**30, 2**31 - 1,
                   -2**31, 2**31 - 2, -2]
INTERESTING_FLOAT = [0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e-45, 1e-40, 1e-38,
                     1e-30, 1e-20, 1e-10, 2.0**-31, 2.0**-32, 1 / 256, 1 / 255, 0.5, 1.0, -1.0,
                     2.0, 6.0, 1e5, 2.0**31, 2.0**32, 1e20, 1e30, 3.4e38, -3.4e38]
INTERESTING_ZERO_POINTS = [-129, -128, -127, -1, 0, 1, 127, 128, 200, 255, 256, 300, -2**31,
                           2**31, 2**40]

_PACK = {"i8": "<b", "u8": "<B", "i16": "<h", "i32": "<i", "u32": "<I", "f32": "<f",
         "i64": "<q", "len": "<I"}


@dataclasses.dataclass(frozen=True)
class Field:
    pos: int
    kind: str          # i8 u8 i16 i32 u32 f32 i64 len (a vector's element count)
    label: str


@dataclasses.dataclass
class Seed:
    path: str
    data: bytes
    fields: list
    buffers: list      # (start, size) of constant data


def _scalar(fields, table, slot, kind, label):
    o = table._tab.Offset(slot)
    if o:
        fields.append(Field(table._tab.Pos + o, kind, label))


def _vector(fields, table, slot, kind, label, limit=64):
    o = table._tab.Offset(slot)
    if not o:
        return
    start, n = table._tab.Vector(o), table._tab.VectorLen(o)
    fields.append(Field(start - 4, "len", f"{label}.length"))
    size = struct.calcsize(_PACK[kind])
    for j in range(min(n, limit)):
        fields.append(Field(start + size * j, kind, f"{label}[{j}]"))


def _options_fields(fields, table, label):
    """Every scalar of a builtin options table, found from its vtable (the sizes from
    the distances between fields): strides, paddings, filters, axis, beta..."""
    buf, pos = table.Bytes, table.Pos
    vtable = pos - struct.unpack_from("<i", buf, pos)[0]
    vsize = struct.unpack_from("<H", buf, vtable)[0]
    offsets = sorted({struct.unpack_from("<H", buf, vtable + 4 + 2 * k)[0]
                      for k in range((vsize - 4) // 2)} - {0})
    for k, off in enumerate(offsets):
        size = min(4, (offsets[k + 1] - off) if k + 1 < len(offsets) else 4)
        if size >= 4:
            fields.append(Field(pos + off, "i32", f"{label}+{off}"))
            fields.append(Field(pos + off, "f32", f"{label}+{off}"))
        elif size >= 1:
            fields.append(Field(pos + off, "i8", f"{label}+{off}"))


def parse_seed(path: str) -> Seed:
    import tflite
    with open(path, "rb") as f:
        data = f.read()
    model = tflite.Model.GetRootAsModel(data, 0)
    fields: list[Field] = []
    buffers = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        _scalar(fields, code, 4, "i8", f"opcode[{i}].deprecated_builtin_code")
        _scalar(fields, code, 10, "i32", f"opcode[{i}].builtin_code")
    for i in range(model.BuffersLength()):
        b = model.Buffers(i)
        o = b._tab.Offset(4)
        if o and b._tab.VectorLen(o):
            buffers.append((b._tab.Vector(o), b._tab.VectorLen(o)))
            fields.append(Field(b._tab.Vector(o) - 4, "len", f"buffer[{i}].length"))
    sub = model.Subgraphs(0)
    _vector(fields, sub, 6, "i32", "subgraph.inputs")
    _vector(fields, sub, 8, "i32", "subgraph.outputs")
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        _vector(fields, t, 4, "i32", f"tensor[{i}].shape")
        _scalar(fields, t, 6, "i8", f"tensor[{i}].type")
        _scalar(fields, t, 8, "u32", f"tensor[{i}].buffer")
        q = t.Quantization()
        if q is not None:
            _vector(fields, q, 8, "f32", f"tensor[{i}].scale")
            _vector(fields, q, 10, "i64", f"tensor[{i}].zero_point")
            _scalar(fields, q, 16, "i32", f"tensor[{i}].quantized_dimension")
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        _scalar(fields, op, 4, "u32", f"op[{i}].opcode_index")
        _vector(fields, op, 6, "i32", f"op[{i}].inputs")
        _vector(fields, op, 8, "i32", f"op[{i}].outputs")
        options = op.BuiltinOptions()
        if options is not None:
            _options_fields(fields, options, f"op[{i}].options")
    return Seed(os.path.relpath(path, ROOT), data, fields, buffers)


def seed_paths() -> list[str]:
    found = []
    for top in ("tests/models", "examples"):
        found += glob.glob(os.path.join(ROOT, top, "**", "*.tflite"), recursive=True)
    return sorted(found)


def _value_for(field: Field, current, rng: random.Random):
    choice = rng.random()
    if field.kind == "f32":
        if choice < 0.6:
            return rng.choice(INTERESTING_FLOAT)
        if choice < 0.9 and current == current:
            return current * rng.choice([2.0**k for k in (-40, -20, -8, -1, 1, 8, 20, 40)])
        return struct.unpack("<f", rng.randbytes(4))[0]
    if field.kind == "i64":
        return rng.choice(INTERESTING_ZERO_POINTS) if choice < 0.8 else current + rng.choice([-1, 1])
    if choice < 0.55:
        value = rng.choice(INTERESTING_INT)
    elif choice < 0.9:
        value = current + rng.choice([-2, -1, 1, 2, current, -current])
    else:
        value = rng.getrandbits(32)
    if field.kind == "len":
        value = rng.choice([0, 1, 2, 3, max(current - 1, 0), current + 1, current + 2])
    return value


def _write(data: bytearray, field: Field, value) -> None:
    fmt = _PACK[field.kind]
    if field.kind == "f32":
        try:
            struct.pack_into(fmt, data, field.pos, float(value))
        except OverflowError:   # beyond float32 (a scaled-up value): what a cast would give
            struct.pack_into(fmt, data, field.pos, math.copysign(math.inf, value))
        return
    bits = 8 * struct.calcsize(fmt)
    value = int(value) & ((1 << bits) - 1)          # wrap into the field's width
    if fmt[1].islower() and value >= 1 << (bits - 1):
        value -= 1 << bits
    struct.pack_into(fmt, data, field.pos, value)


def mutate(seed: Seed, rng: random.Random) -> tuple[bytes, str]:
    """One mutant and a description of what was changed."""
    data = bytearray(seed.data)
    what = []
    kind = rng.random()
    if kind < 0.72 and seed.fields:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            field = rng.choice(seed.fields)
            if field.pos + struct.calcsize(_PACK[field.kind]) > len(data):
                continue
            current = struct.unpack_from(_PACK[field.kind], data, field.pos)[0]
            value = _value_for(field, current, rng)
            _write(data, field, value)
            what.append(f"{field.label} {current!r} -> {value!r}")
    elif kind < 0.84 and seed.buffers:
        start, size = rng.choice(seed.buffers)
        fill = rng.choice(["max", "min", "random", "zero", "bytes"])
        if fill == "random":
            data[start:start + size] = rng.randbytes(size)
        elif fill == "bytes":
            for _ in range(rng.randint(1, 8)):
                data[start + rng.randrange(size)] = rng.randrange(256)
        else:
            byte = {"max": 0x7F, "min": 0x80, "zero": 0}[fill]
            data[start:start + size] = bytes([byte]) * size
        what.append(f"buffer at {start} ({size} bytes) filled: {fill}")
    elif kind < 0.95:
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
            what.append(f"bit flip at {pos}")
    else:
        cut = rng.randrange(len(data))
        del data[cut:]
        what.append(f"truncated to {cut} bytes")
    return bytes(data), "; ".join(what)


def mutant(seeds: list[Seed], weights: list[float], seed: int, index: int):
    rng = random.Random(f"{seed}:{index}")
    s = rng.choices(seeds, weights)[0]
    data, what = mutate(s, rng)
    return s, data, what, rng


# -- one execution -----------------------------------------------------------------------

class Finding(Exception):
    def __init__(self, kind: str, detail: str):
        self.kind, self.detail = kind, detail
        super().__init__(f"{kind}: {detail}")


def _random_input(info, rng: random.Random):
    import numpy as np
    g = np.random.default_rng(rng.getrandbits(64))
    dtype = np.dtype(info.dtype)
    style = rng.random()
    if dtype.kind in "iu":
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        if style < 0.15:
            return np.full(info.shape, hi if style < 0.075 else lo, dtype)
        return g.integers(lo, hi + 1, size=info.shape).astype(dtype)
    if style < 0.2:
        values = [3.4e38, -3.4e38, 1e30, -1e-30, 0.0, 1e9, -1e9]
        return g.choice(np.array(values, np.float32), size=info.shape).astype(dtype)
    return g.uniform(-3, 3, size=info.shape).astype(dtype)


def _same(a, b) -> bool:
    import numpy as np
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _may_use_threads(model) -> bool:
    """Whether some op of the model is big enough for the core to split it over two
    threads (smaller models run the same code with num_threads=2 as with 1)."""
    from edgecnn import core_backend
    from edgecnn.validation import estimate_work
    return estimate_work(model.qgraph) >= 2 * core_backend.MIN_MACS_PER_THREAD


def _by_compiled_form(runs) -> dict:
    """{(weight layout, threads): [ISA levels]}: the core compiles a model once per weight
    layout and thread count, and picks every other kernel by the level set when it runs,
    so one compiled model is run under each level that shares its layout."""
    from edgecnn import core_backend
    groups: dict = {}
    for isa, threads in runs:
        groups.setdefault((core_backend.weight_layout(isa), threads), []).append(isa)
    return groups


def execute(data: bytes, rng: random.Random, config) -> str:
    """'rejected' or 'compared'; raises Finding for anything wrong."""
    import edgecnn
    from edgecnn import core_backend
    profile = rng.choice(["tflm", "litert-ref", "xnnpack"])
    try:
        model = edgecnn.load(data, profile=profile, limits=config.limits)
    except edgecnn.EdgecnnError as exc:
        if getattr(exc, "unchecked", False):
            raise Finding("unchecked", f"{type(exc).__name__}: {exc}") from None
        return "rejected"
    except Exception as exc:
        raise Finding("exception", f"at load ({profile}): {type(exc).__name__}: {exc}\n"
                      + traceback.format_exc()) from None
    try:
        x = [_random_input(info, rng) for info in model.inputs]
        want = model.run(x, backend="reference")
        want = want if isinstance(want, list) else [want]
        runs = [(isa, 1) for isa in config.isas]
        if _may_use_threads(model):
            runs.append((rng.choice(config.isas), 2))
            if config.replay:   # every level with one and with two threads
                runs = [(isa, threads) for isa in config.isas for threads in (1, 2)]
        for (layout, threads), isas in _by_compiled_form(runs).items():
            core_backend._core.set_isa(isas[0])
            compiled = core_backend.CompiledModel(model.qgraph, threads)
            for isa in isas:
                core_backend._core.set_isa(isa)
                got = compiled.run(x)
                for k, (g, w) in enumerate(zip(got, want)):
                    if not _same(g, w):
                        raise Finding("mismatch", f"output {k}, profile {profile}, isa {isa}, "
                                      f"{threads} thread(s)")
    except Finding:
        raise
    except Exception as exc:
        raise Finding("run-error", f"({profile}): {type(exc).__name__}: {exc}\n"
                      + traceback.format_exc()) from None
    return "compared"


# -- the supervisor and its workers --------------------------------------------------------

# shared counters (int64 slots of an anonymous shared mapping)
CURRENT, DONE, REJECTED, COMPARED, FINDINGS = range(5)
SLOTS = 8


class Counters:
    def __init__(self):
        self.map = mmap.mmap(-1, 8 * SLOTS)

    def __getitem__(self, k):
        return struct.unpack_from("<q", self.map, 8 * k)[0]

    def __setitem__(self, k, v):
        struct.pack_into("<q", self.map, 8 * k, v)


def record(config, seeds, weights, index, kind, detail, seen: dict) -> None:
    s, data, what, _ = mutant(seeds, weights, config.seed, index)
    key = f"{kind}:{detail.splitlines()[0][:60]}" if detail else kind
    seen[key] = seen.get(key, 0) + 1
    if seen[key] > config.keep_per_kind:
        return
    os.makedirs(os.path.join(config.out, "findings"), exist_ok=True)
    stem = os.path.join(config.out, "findings", f"{kind}-{config.seed}-{index}")
    with open(stem + ".tflite", "wb") as f:
        f.write(data)
    with open(stem + ".txt", "w") as f:
        f.write(f"seed {config.seed} index {index}\nmodel {s.path}\nmutation {what}\n"
                f"{kind}: {detail}\n")


def worker(config, seeds, weights, counters: Counters, indices, log) -> None:
    """Runs in a forked child: executes inputs until the supervisor's budget ends."""
    import resource
    if config.memory_mb and not os.environ.get("EDGECNN_FUZZ_SANITIZED"):
        # (AddressSanitizer reserves terabytes of shadow address space: no limit there)
        limit = config.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    seen: dict = {}
    loadable = open(os.path.join(config.out, "loadable.txt"), "a") if config.out else None
    deadline = config.deadline
    for index in indices:
        if deadline and time.monotonic() > deadline:
            break
        counters[CURRENT] = index
        s, data, what, rng = mutant(seeds, weights, config.seed, index)
        try:
            result = execute(data, rng, config)
            counters[REJECTED if result == "rejected" else COMPARED] += 1
            if result == "compared" and loadable is not None:
                loadable.write(f"{config.seed} {index}\n")
        except Finding as finding:
            counters[FINDINGS] += 1
            log(f"FINDING {finding.kind} at index {index} ({s.path}: {what}): "
                f"{finding.detail.splitlines()[0]}")
            if config.out:
                record(config, seeds, weights, index, finding.kind, finding.detail, seen)
        counters[DONE] += 1
        if counters[DONE] % 1000 == 0 and loadable is not None:
            loadable.flush()
    if loadable is not None:
        loadable.close()


def supervise(config, seeds, weights, indices: list[int]) -> dict:
    """Fork a worker over `indices`; after a crash or a hang, record it and re-fork from
    the next input. Returns the totals."""
    counters = Counters()
    totals = {"executions": 0, "rejected": 0, "compared": 0, "findings": 0, "crash": 0,
              "hang": 0}
    seen: dict = {}
    start = time.monotonic()
    last_report = start
    position = 0

    def log(message):
        print(message, flush=True)

    stop = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.append(True))
    while position < len(indices) and not stop:
        if config.seconds and time.monotonic() - start > config.seconds:
            break
        for k in range(SLOTS):
            counters[k] = 0
        counters[CURRENT] = -1
        batch = indices[position:]
        config.deadline = start + config.seconds if config.seconds else 0
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                worker(config, seeds, weights, counters, batch, log)
            except BaseException:
                traceback.print_exc()
                code = 3
            os._exit(code)
        last_progress, last_change = None, time.monotonic()
        status = None
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.2)
            now = time.monotonic()
            progress = (counters[CURRENT], counters[DONE])
            if progress != last_progress:
                last_progress, last_change = progress, now
            if now - last_change > config.timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = "hang"
                break
            if stop or (config.seconds and now - start > config.seconds + config.timeout):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = "deadline"
                break
            if now - last_report > config.report_every:
                last_report = now
                _report(totals, counters, now - start, partial=True)
        done_here = counters[DONE]
        for key, slot in (("rejected", REJECTED), ("compared", COMPARED), ("findings", FINDINGS)):
            totals[key] += counters[slot]
        totals["executions"] += done_here
        position += done_here
        if status == "deadline" or (config.seconds and time.monotonic() - start > config.seconds):
            break
        if status == "hang" or (isinstance(status, int) and status != 0):
            kind = "hang" if status == "hang" else "crash"
            index = indices[position]
            detail = (f"no progress for {config.timeout} s" if kind == "hang" else
                      f"worker exit status {status} (signal {status & 0x7f})")
            log(f"FINDING {kind} at index {index}: {detail}")
            totals[kind] += 1
            totals["executions"] += 1
            if config.out:
                record(config, seeds, weights, index, kind, detail, seen)
            position += 1
    totals["seconds"] = time.monotonic() - start
    return totals


def _report(totals, counters, elapsed, partial=False):
    executions = totals["executions"] + (counters[DONE] if partial else 0)
    rate = executions / elapsed if elapsed else 0.0
    compared = totals["compared"] + (counters[COMPARED] if partial else 0)
    findings = totals["findings"] + (counters[FINDINGS] if partial else 0)
    print(f"[{elapsed:7.0f} s] {executions} executions ({rate:.0f}/s), {compared} compared, "
          f"findings {findings + totals['crash'] + totals['hang']} "
          f"(crash {totals['crash']}, hang {totals['hang']})", flush=True)


# -- the sanitized build -----------------------------------------------------------------

def sanitized_environment(build_dir: str) -> dict:
    """Build the core with -fsanitize=address,undefined into build_dir (once) and return
    the environment that runs Python on it (as tests/test_core_sanitizers.py does)."""
    import shutil
    import subprocess

    def runtime(name):
        out = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True)
        return out.stdout.strip()

    site = os.path.join(build_dir, "site")
    if not glob.glob(os.path.join(site, "edgecnn", "_core*.so")):
        source = os.path.join(build_dir, "src")
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
            ".git", "build", "*.so", "*.egg-info", "_core.c", "__pycache__", ".hypothesis",
            "fuzz-out*"))
        flags = "-fsanitize=address,undefined -fno-sanitize-recover=undefined " \
                "-fno-omit-frame-pointer"
        env = dict(os.environ, CFLAGS=flags, LDFLAGS="-fsanitize=address,undefined")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--target", site, source], env=env, check=True)
    return dict(os.environ, LD_PRELOAD=f"{runtime('libasan.so')} {runtime('libubsan.so')}",
                ASAN_OPTIONS="detect_leaks=0:abort_on_error=1", PYTHONPATH=site,
                EDGECNN_FUZZ_SANITIZED="1")


def _campaign_seeds(config) -> list[str]:
    """The seed files, in order. A campaign records them (path and SHA-256) in
    OUT/seeds.txt, and a replay reads them from the seeds.txt beside its loadable.txt:
    mutant i is a function of the seed list too, so a replay refuses changed seeds."""
    import hashlib

    def digest(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    if config.replay:
        listing = os.path.join(os.path.dirname(os.path.abspath(config.replay)), "seeds.txt")
        with open(listing) as f:
            rows = [line.split() for line in f if line.strip()]
        for sha, path in rows:
            if digest(os.path.join(ROOT, path)) != sha:
                raise SystemExit(f"{path} changed since the campaign: cannot replay it")
        return [os.path.join(ROOT, path) for _, path in rows]
    paths = seed_paths()
    if config.out:
        with open(os.path.join(config.out, "seeds.txt"), "w") as f:
            f.writelines(f"{digest(p)} {os.path.relpath(p, ROOT)}\n" for p in paths)
    return paths


# -- command line ------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=1, help="campaign seed (mutant i = f(seed, i))")
    p.add_argument("--start", type=int, default=0, help="first mutant index")
    p.add_argument("--executions", type=int, default=0, help="stop after this many (0: none)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: none)")
    p.add_argument("--timeout", type=float, default=30, help="seconds without progress = hang")
    p.add_argument("--memory-mb", type=int, default=3072, help="address-space limit per worker")
    p.add_argument("--max-memory", type=int, default=32 * 2**20,
                   help="edgecnn.Limits.max_memory for the mutants (bytes)")
    p.add_argument("--max-work", type=int, default=2 * 10**8,
                   help="edgecnn.Limits.max_work for the mutants")
    p.add_argument("--out", default="", help="directory for findings and loadable.txt")
    p.add_argument("--keep-per-kind", type=int, default=5, help="reproducers kept per finding kind")
    p.add_argument("--report-every", type=float, default=60, help="seconds between progress lines")
    p.add_argument("--replay", default="", help="a loadable.txt: run exactly those mutants")
    p.add_argument("--asan", action="store_true", help="run on a sanitized build of the core")
    p.add_argument("--asan-build", default="/tmp/edgecnn-fuzz-asan", help="where to build it")
    p.add_argument("--nets-weight", type=float, default=0.005,
                   help="share of mutants made from the (slow) network seeds")
    return p.parse_args(argv)


def main(argv=None) -> int:
    config = parse_args(argv)
    if config.asan and not os.environ.get("EDGECNN_FUZZ_SANITIZED"):
        env = sanitized_environment(config.asan_build)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] +
                  (sys.argv[1:] if argv is None else list(argv)), env)
    import warnings
    warnings.simplefilter("ignore", RuntimeWarning)   # numpy on hostile scales: inf, nan
    import edgecnn
    from edgecnn import core_backend
    if not core_backend.available():
        print("the Cython core is not built", file=sys.stderr)
        return 2
    config.limits = edgecnn.Limits(max_memory=config.max_memory, max_work=config.max_work)
    config.isas = core_backend._core.supported_isas()
    if config.out:
        os.makedirs(config.out, exist_ok=True)
    seeds = [parse_seed(p) for p in _campaign_seeds(config)]
    nets = [s for s in seeds if "/nets/" in s.path]
    small = [s for s in seeds if "/nets/" not in s.path]
    weights = [config.nets_weight / max(len(nets), 1)] * len(nets) + \
        [(1 - config.nets_weight) / max(len(small), 1)] * len(small)
    seeds = nets + small
    if config.replay:
        with open(config.replay) as f:
            pairs = [tuple(int(v) for v in line.split()) for line in f if line.strip()]
        by_seed = {}
        for s, i in pairs:
            by_seed.setdefault(s, []).append(i)
        campaigns = sorted(by_seed.items())
    else:
        count = config.executions or 10**12
        campaigns = [(config.seed, range(config.start, config.start + count))]
    print(f"edgecnn fuzz: {len(seeds)} seed models ({len(nets)} networks, "
          f"{sum(len(s.fields) for s in seeds)} fields), ISA levels {', '.join(config.isas)}, "
          f"limits {config.limits}"
          f"{', sanitized core' if os.environ.get('EDGECNN_FUZZ_SANITIZED') else ''}", flush=True)
    grand = {}
    for campaign_seed, indices in campaigns:
        config.seed = campaign_seed
        totals = supervise(config, seeds, weights, list(indices) if config.replay else indices)
        for k, v in totals.items():
            grand[k] = grand.get(k, 0) + v
    seconds = grand.get("seconds", 0.0)
    bad = grand.get("findings", 0) + grand.get("crash", 0) + grand.get("hang", 0)
    print(f"done: {grand.get('executions', 0)} executions in {seconds:.0f} s "
          f"({grand.get('executions', 0) / max(seconds, 1e-9):.1f}/s): "
          f"{grand.get('rejected', 0)} rejected at load, {grand.get('compared', 0)} compared "
          f"core vs reference on {len(config.isas)} ISA levels; findings {bad} "
          f"(crash {grand.get('crash', 0)}, hang {grand.get('hang', 0)})", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
