#!/usr/bin/env bash
# arm-python.sh: build edgecnn for an emulated Raspberry Pi Python and run the core tests there.
#
#   bash .ci/arm-python.sh          # set up (first time ~4 min), build, test (what CI runs)
#   bash .ci/arm-python.sh setup    # set up and build only; then use the printed pythons
#   bash .ci/arm-python.sh test     # test only (after a setup)
#
# On an x86-64 Debian 12 host, from Debian's and PyPI's registries only, this makes:
#  - $H/venv-arm64/bin/python-qemu: Debian bookworm's Python 3.11 for arm64 (the one of 64-bit
#    Raspberry Pi OS), run by qemu-aarch64, in a venv with PyPI's aarch64 wheels of numpy,
#    ai-edge-litert, tflite, Pillow, pytest, hypothesis; EMU_CPU=cortex-a72 (Pi 4, NEON, the
#    default) or cortex-a76 (Pi 5, NEON + dot product) picks the emulated CPU;
#  - $H/sysroot-armhf/usr/bin/python-qemu: the armhf (32-bit) Python, run by qemu-arm, with
#    Debian's numpy and Pillow (PyPI has no armv7 wheels of them, nor of LiteRT);
#  - $H/bin/count-insns: the arm64 python under the instruction-counting TCG plugin
#    (firmware_export/templates/tools/insncount.c);
# and builds this checkout for both with the cross compilers, with
# -Werror=implicit-function-declaration (a call to an x86-only helper then stops the build).
#
# Tests (each run's exit status is checked; the script fails if any run fails):
#  - arm64 under cortex-a76 (every kernel level): tests/test_core.py (core == reference on
#    every committed model and profile under each level, and a hypothesis subset), under
#    cortex-a72 its dispatch subset; under both, tests/test_softmax_lut.py (LiteRT's aarch64
#    SOFTMAX, live against LiteRT's aarch64 wheel);
#  - armhf: the every-model comparison of the portable kernels (profiles tflm, xnnpack-aarch64).
#
# Settings: H (default ${TMPDIR:-/tmp}/edgecnn-arm-python; the generated wrappers hard-code it),
# ARM_TESTS_A76 / ARM_TESTS_ORACLES / ARM_TESTS_A72 / ARM_TESTS_ARMHF (the pytest arguments of the
# runs), EXTRA_CFLAGS.
# Root (or sudo) is needed the first time, for apt. Nothing :arm64/:armhf is installed on the
# host: the Pythons are fetched with `apt-get download` and unpacked into sysroots under $H.
# Two qemu-user pitfalls are handled as in shared/embedded/arm-python (where this comes from):
# an ARM /proc/cpuinfo per emulated CPU (LiteRT crashes on the host's x86 one), and a
# host-runnable sys.executable (the wrapper passes itself as argv[0] with qemu's -0).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
MODE=${1:-all}
case "$MODE" in all | setup | test) ;; *) echo "usage: $0 [all|setup|test]" >&2; exit 2 ;; esac
H=${H:-${TMPDIR:-/tmp}/edgecnn-arm-python}
mkdir -p "$H" && H=$(cd "$H" && pwd)
EXTRA_CFLAGS=${EXTRA_CFLAGS:-}
WERROR="-Werror=implicit-function-declaration"
PYA="$H/venv-arm64/bin/python-qemu"
PYH="$H/sysroot-armhf/usr/bin/python-qemu"
T0=$(date +%s)
log() { printf '\n== [%4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf 'arm-python.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
host_packages() {
    local sudo="" need=0 a c sr
    [ "$(id -u)" = 0 ] || sudo=sudo
    for c in qemu-aarch64 qemu-arm aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc gcc; do
        command -v $c > /dev/null || need=1
    done
    [ -f /usr/aarch64-linux-gnu/include/stdio.h ] && [ -f /usr/arm-linux-gnueabihf/include/stdio.h ] || need=1
    python3 -m pip --version > /dev/null 2>&1 || need=1   # host pip bootstraps the guests' pip
    for a in arm64 armhf; do   # the foreign package index is needed until the sysroot exists
        sr="$H/sysroot"; [ "$a" = armhf ] && sr="$H/sysroot-armhf"
        [ -x "$sr/usr/bin/python3.11" ] && continue
        dpkg --print-foreign-architectures | grep -qx "$a" || need=1
        apt-cache show "python3.11:$a" > /dev/null 2>&1 || need=1
    done
    [ "$need" = 1 ] || { echo "already installed"; return 0; }
    $sudo dpkg --add-architecture arm64
    $sudo dpkg --add-architecture armhf
    $sudo apt-get update -q || true   # a foreign index may fail while a mirror syncs
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        qemu-user gcc libc6-dev python3-pip gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
}

# Debian's python3.11 and the libraries it loads (the same list for both architectures).
PY_DEBS="libbz2-1.0 libc6 libc6-dev libcrypt-dev libcrypt1 libdb5.3 libexpat1 libexpat1-dev
  libffi8 libgcc-s1 libgomp1 libgssapi-krb5-2 libk5crypto3 libkeyutils1 libkrb5-3
  libkrb5support0 libcom-err2 liblzma5 libncursesw6 libnsl2 libpython3.11 libpython3.11-dev
  libpython3.11-minimal libpython3.11-stdlib libreadline8 libsqlite3-0 libssl3 libstdc++6
  libtinfo6 libtirpc3 libuuid1 python3.11 python3.11-minimal zlib1g gcc-12-base"
# armhf: Debian's numpy and Pillow and what they load.
ARMHF_DEBS="python3-numpy libblas3 liblapack3 libgfortran5 python3-pil libjpeg62-turbo libtiff6
  libwebp7 libwebpdemux2 libwebpmux3 libfreetype6 liblcms2-2 libopenjp2-7 libimagequant0
  libraqm0 libxcb1 libpng16-16 libbrotli1 libdeflate0 libjbig0 liblerc4 libzstd1 libfribidi0
  libharfbuzz0b libglib2.0-0 libgraphite2-3 libxau6 libxdmcp6 libbsd0 libmd0 libpcre2-8-0
  libselinux1 libmount1 libblkid1"

make_sysroot() {  # make_sysroot ARCH DIR PACKAGES...: apt-get download + dpkg -x
    local arch=$1 dir=$2 deb; shift 2
    [ -x "$dir/usr/bin/python3.11" ] && { echo "$dir: already there"; return 0; }
    rm -rf "$H/debs-$arch" "$dir.tmp" "$dir"-cortex-* && mkdir -p "$H/debs-$arch" "$dir.tmp"
    chmod 777 "$H/debs-$arch"   # apt's sandbox user downloads here
    (cd "$H/debs-$arch" && apt-get download -q $(for p in "$@"; do echo "$p:$arch"; done))
    for deb in "$H/debs-$arch"/*.deb; do dpkg -x "$deb" "$dir.tmp"; done
    mv "$dir.tmp" "$dir" && rm -rf "$H/debs-$arch"
}

write_cpuinfo() {  # NAME VARIANT PART REVISION FEATURES: /proc/cpuinfo as a Pi's kernel prints it
    local f="$H/cpuinfo/$1" i n
    n=$(nproc --all)
    : > "$f.tmp"
    for ((i = 0; i < n; i++)); do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
            "$i" "$5" "$2" "$3" "$4" >> "$f.tmp"
    done
    mv "$f.tmp" "$f"
}

arm64_python() {
    mkdir -p "$H/cpuinfo" "$H/bin"
    write_cpuinfo cortex-a53 0x0 0xd03 4 "fp asimd evtstrm crc32 cpuid"          # Pi 3, Zero 2 W
    write_cpuinfo cortex-a72 0x0 0xd08 3 "fp asimd evtstrm crc32 cpuid"          # Pi 4, Pi 400
    write_cpuinfo cortex-a76 0x4 0xd0b 1 "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"  # Pi 5
    [ -x "$H/venv-arm64/bin/python3.11" ] ||
        qemu-aarch64 -L "$H/sysroot" "$H/sysroot/usr/bin/python3.11" -m venv --without-pip "$H/venv-arm64"
    cat > "$PYA.tmp" <<EOF
#!/bin/sh
# Host-runnable "python" of the emulated arm64 venv (written by edgecnn's .ci/arm-python.sh).
# EMU_CPU=cortex-a72 (Pi 4, default) | cortex-a76 (Pi 5) | cortex-a53 (Pi 3): qemu's -cpu, and a
# hard-linked view of the sysroot holding that CPU's ARM /proc/cpuinfo (qemu serves guest paths
# from its -L prefix first; QEMU 7.2 would pass the host's x86 one through, and LiteRT crashes).
# argv[0] (-0) is this script, so sys.executable is host-runnable for subprocesses.
# QEMU_ARGS: more qemu options (e.g. -plugin) for this process only.
H="$H"
CPU=\${EMU_CPU:-cortex-a72}
QARGS=\${QEMU_ARGS:-}
unset QEMU_ARGS
VIEW="\$H/sysroot-\$CPU"
if [ ! -d "\$VIEW" ]; then
    tmp="\$VIEW.tmp.\$\$"
    cp -al "\$H/sysroot" "\$tmp" && rm -rf "\$tmp/proc" && mkdir "\$tmp/proc" &&
    if [ -f "\$H/cpuinfo/\$CPU" ]; then cp "\$H/cpuinfo/\$CPU" "\$tmp/proc/cpuinfo"; else
        echo "python-qemu: no ARM cpuinfo for \$CPU; LiteRT will crash" >&2; fi
    mv -T "\$tmp" "\$VIEW" 2> /dev/null || rm -rf "\$tmp"
fi
exec qemu-aarch64 -cpu "\$CPU" \$QARGS -L "\$VIEW" -0 "\$0" "\$H/venv-arm64/bin/python3.11" "\$@"
EOF
    chmod +x "$PYA.tmp" && mv "$PYA.tmp" "$PYA"
    local cpu
    for cpu in cortex-a72 cortex-a76; do   # make the views now, with fresh cpuinfo
        EMU_CPU=$cpu "$PYA" -c pass
        cp "$H/cpuinfo/$cpu" "$H/sysroot-$cpu/proc/cpuinfo"
    done
    if ! "$PYA" -m pip --version > /dev/null 2>&1; then
        rm -rf "$H/pip-wheel" && python3 -m pip download -q --no-deps -d "$H/pip-wheel" pip
        local whl
        whl=$(ls "$H"/pip-wheel/pip-*.whl)
        "$PYA" "$whl/pip" install -q --no-index "$whl"
        rm -rf "$H/pip-wheel"
    fi
    # tflite-micro publishes x86-64 wheels only: the test extra skips it here (its marker).
    local pkgs="numpy ai-edge-litert tflite Pillow pytest>=7 hypothesis>=6 setuptools>=70.1 Cython>=3.0"
    if [ "$(cat "$H/venv-arm64/.deps" 2> /dev/null)" != "$pkgs" ]; then
        "$PYA" -m pip install -q $pkgs
        echo "$pkgs" > "$H/venv-arm64/.deps"
    fi
}

count_insns_tool() {
    local src="$REPO/firmware_export/templates/tools/insncount.c"
    mkdir -p "$H/insncount"
    if ! cmp -s "$src" "$H/insncount/insncount.c" || [ ! -f "$H/insncount/libinsncount.so" ]; then
        gcc -shared -fPIC -O2 -o "$H/insncount/libinsncount.so" "$src"
        cp "$src" "$H/insncount/insncount.c"
    fi
    cat > "$H/bin/count-insns" <<EOF
#!/bin/sh
# count-insns [python args...]: the emulated arm64 python (EMU_CPU as for python-qemu) under the
# insncount TCG plugin; at exit prints "insns total=N between=M" (guest instructions of the
# whole process) on stderr, or into \$INSNS_FILE if set.
out=\$(mktemp)
QEMU_ARGS="-plugin $H/insncount/libinsncount.so\${INSN_MARKS:+,\$INSN_MARKS} -d plugin -D \$out \${QEMU_ARGS:-}" \\
    "$PYA" "\$@"
rc=\$?
if [ -n "\${INSNS_FILE:-}" ]; then cat "\$out" > "\$INSNS_FILE"; else cat "\$out" >&2; fi
rm -f "\$out"
exit \$rc
EOF
    chmod +x "$H/bin/count-insns"
}

host_cythonize() {
    # Cython is slow under emulation (and pure Python on armhf): generate edgecnn/_core.c on
    # the host with setup.py's own directives (setup.py cythonizes when it is loaded); the
    # emulated builds then find it up to date and only compile it.
    if python3 -c "import Cython" 2> /dev/null; then
        python3 setup.py -q --version > /dev/null
    else
        echo "no Cython on the host: the emulated Pythons cythonize (slower)"
    fi
}

build_arm64() {
    local s="$H/sysroot"
    # setuptools adds the host's -I/usr/include/python3.11, whose pyconfig.h dispatches to the
    # aarch64 one that only the sysroot has: the sysroot's headers come first. A changed CFLAGS
    # does not make setuptools rebuild, so the previous aarch64 build goes first.
    rm -rf edgecnn/_core.cpython-*-aarch64-linux-gnu.so build/temp.linux-aarch64-* build/lib.linux-aarch64-*
    export CC=aarch64-linux-gnu-gcc CFLAGS="-I$s/usr/include/python3.11 -I$s/usr/include $WERROR $EXTRA_CFLAGS"
    if grep -qs "'$REPO/edgecnn'" "$H"/venv-arm64/lib/python3.11/site-packages/__editable___edgecnn_*_finder.py; then
        "$PYA" setup.py -q build_ext --inplace   # already installed editable from here
    else
        "$PYA" -m pip install -q --no-build-isolation --no-deps -e .
    fi
    unset CC CFLAGS
    (cd "$H" && "$PYA" -c "import platform; from edgecnn import core_backend as c; print(platform.machine(), 'edgecnn core:', c.instruction_set()); c.available() or exit('the core does not import: ' + c._IMPORT_ERROR)")
}

armhf_python() {
    make_sysroot armhf "$H/sysroot-armhf" $PY_DEBS $ARMHF_DEBS
    (cd "$H/sysroot-armhf/usr/lib/arm-linux-gnueabihf" &&   # update-alternatives' links
     ln -sf blas/libblas.so.3 libblas.so.3 && ln -sf lapack/liblapack.so.3 liblapack.so.3)
    # No armv7l wheels on PyPI for numpy/Pillow/ai-edge-litert: the pure ones only, by host pip.
    local pkgs="tflite flatbuffers Cython>=3.0 setuptools>=70.1 pytest pluggy iniconfig packaging pygments hypothesis sortedcontainers attrs"
    if [ "$(cat "$H/site-armhf/.deps" 2> /dev/null)" != "$pkgs" ]; then
        python3 -m pip install -q --upgrade --target "$H/site-armhf" --only-binary=:all: \
            --platform linux_armv7l --python-version 3.11 --implementation cp --abi cp311 \
            --abi abi3 --abi none --no-deps $pkgs
        echo "$pkgs" > "$H/site-armhf/.deps"
    fi
    cat > "$PYH" <<EOF
#!/bin/sh
# Host-runnable armhf Python 3.11 under qemu-arm (written by edgecnn's .ci/arm-python.sh);
# EMU_CPU_ARM=cortex-a7 (default) | cortex-a15 | max. edgecnn is a snapshot install (rerun the
# script after a change); run pytest with -P from outside the checkout.
export PYTHONPATH="$H/site-armhf-edgecnn:$H/site-armhf\${PYTHONPATH:+:\$PYTHONPATH}"
QARGS=\${QEMU_ARGS:-}
unset QEMU_ARGS
exec qemu-arm -cpu "\${EMU_CPU_ARM:-cortex-a7}" \$QARGS -L "$H/sysroot-armhf" -0 "\$0" "$H/sysroot-armhf/usr/bin/python3.11" "\$@"
EOF
    chmod +x "$PYH"
}

build_armhf() {  # a wheel built from a copy of the checkout's files, unpacked into a site dir
    local s="$H/sysroot-armhf"
    rm -rf "$H/src-armhf" && mkdir -p "$H/src-armhf"
    if git rev-parse --git-dir > /dev/null 2>&1; then
        git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$H/src-armhf"
        [ ! edgecnn/_core.c -nt edgecnn/_core.pyx ] || cp -p edgecnn/_core.c "$H/src-armhf/edgecnn/"
    else
        tar --exclude=./build --exclude='*.so' -cf - . | tar -xf - -C "$H/src-armhf"
    fi
    (cd "$H/src-armhf" && rm -f edgecnn/*.so &&
     CC=arm-linux-gnueabihf-gcc CFLAGS="-I$s/usr/include/python3.11 -I$s/usr/include $WERROR $EXTRA_CFLAGS" \
         "$PYH" setup.py -q bdist_wheel > build.log 2>&1 || { cat build.log; exit 1; })
    rm -rf "$H/site-armhf-edgecnn" && mkdir -p "$H/site-armhf-edgecnn"
    (cd "$H/site-armhf-edgecnn" && python3 -m zipfile -e "$H"/src-armhf/dist/edgecnn-*.whl .)
    (cd "$H" && "$PYH" -c "import platform; from edgecnn import core_backend as c; print(platform.machine(), 'edgecnn core:', c.instruction_set()); c.available() or exit('the core does not import: ' + c._IMPORT_ERROR)")
}

# ---------------------------------------------------------------------------------------------
if [ "$MODE" != test ]; then
    log "host packages (qemu-user, cross compilers)"
    host_packages
    log "arm64 sysroot: Debian's python3.11"
    make_sysroot arm64 "$H/sysroot" $PY_DEBS
    log "arm64 venv, python-qemu wrapper, pip packages (emulated pip)"
    arm64_python
    count_insns_tool
    log "edgecnn/_core.c, cythonized on the host"
    host_cythonize
    log "edgecnn for arm64 (cross-compiled, $WERROR)"
    build_arm64
    log "armhf sysroot: Debian's python3.11, numpy, Pillow"
    armhf_python
    log "edgecnn for armhf (cross-compiled, $WERROR)"
    build_armhf
    log "ready"
    echo "arm64: $PYA   (EMU_CPU=cortex-a72 Pi 4 [default] | cortex-a76 Pi 5)"
    echo "armhf: $PYH   (run pytest with -P from outside the checkout)"
    echo "instruction counts: $H/bin/count-insns SCRIPT.py ..."
fi
[ "$MODE" = setup ] && exit 0

# ---------------------------------------------------------------------------------------------
# Every run is checked; a failure does not stop the others, the script fails at the end.
# Cortex-A76 (Pi 5) runs every kernel level (NEON, dot product, portable), so the full
# every-model x every-profile comparison runs there; Cortex-A72 (Pi 4, no dot product) checks
# the dispatch (a dot-product instruction there is SIGILL) on the networks and the
# hypothesis subset. Both run the SOFTMAX tests against the live aarch64 LiteRT.
# The defaults are plain assignments first: inside ${VAR:-word} the quotes of word are removed,
# which split the -k expressions into file names.
default_a76="tests/test_core.py tests/test_softmax_lut.py -k 'not random or fully_connected or add or pooling or mean or multiplier'"
default_a72="tests/test_core.py tests/test_softmax_lut.py -k 'not every_model or nets or digits'"
default_armhf="$REPO/tests/test_core.py -k 'every_model and (tflm or aarch64)'"
default_oracles="tests/test_models_oracles.py -k core_on_arm"   # every model vs live LiteRT
ARM_TESTS_A76=${ARM_TESTS_A76:-$default_a76}
ARM_TESTS_A72=${ARM_TESTS_A72:-$default_a72}
ARM_TESTS_ARMHF=${ARM_TESTS_ARMHF:-$default_armhf}
ARM_TESTS_ORACLES=${ARM_TESTS_ORACLES:-$default_oracles}
failed=""
run() {  # run NAME COMMAND...
    local name=$1 start rc=0
    shift
    start=$(date +%s)
    log "test: $name"
    "$@" || rc=$?
    echo "-- $name: exit $rc in $(($(date +%s) - start)) s"
    [ "$rc" = 0 ] || failed="$failed $name"
}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
run arm64-cortex-a76 sh -c "EMU_CPU=cortex-a76 '$PYA' -m pytest -q -p no:cacheprovider $ARM_TESTS_A76"
run arm64-cortex-a76-litert sh -c "EMU_CPU=cortex-a76 '$PYA' -m pytest -q -p no:cacheprovider $ARM_TESTS_ORACLES"
run arm64-cortex-a72 sh -c "EMU_CPU=cortex-a72 '$PYA' -m pytest -q -p no:cacheprovider $ARM_TESTS_A72"
# armhf: from outside the checkout with -P, so that the snapshot install is what is imported.
run armhf sh -c "cd '$H' && '$PYH' -P -m pytest -q -p no:cacheprovider --rootdir '$REPO' $ARM_TESTS_ARMHF"
log "ARM tests done"
if [ -n "$failed" ]; then
    echo "arm-python.sh: FAILED:$failed" >&2
    exit 1
fi
echo "arm-python.sh: all ARM test runs passed"
