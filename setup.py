"""Build the Cython core. Everything else is declared in pyproject.toml.

No numpy at build time (no `cimport numpy`) and no -march=native, so an sdist
builds on a Raspberry Pi with nothing but a C compiler.
"""

import os
import shutil
import subprocess
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("EDGECNN_CYTHON_DEBUG") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,   # C truncating division, which TFLite's arithmetic relies on
}

# -fwrapv: int32 dot products wrap instead of being undefined (see _core.pyx).
# -ffp-contract=off: a float multiply then add (XNNPACK's MEAN) must round twice, as
# in the reference; GCC would fuse them into one FMA on ARM and with -march=native.
COMPILE_ARGS = ["-O3", "-fwrapv", "-ffp-contract=off"]
if os.environ.get("EDGECNN_NATIVE") == "1":
    # Opt-in: tune for this machine's CPU (AVX2/AVX-512 on x86, dotprod on ARM).
    # The wheel then only runs on CPUs like the build machine.
    COMPILE_ARGS.append("-march=native")



def openmp_flags() -> list[str]:
    """-fopenmp if the C compiler can build and link an OpenMP program, else nothing:
    without OpenMP the core's prange loops simply run on one thread."""
    if os.environ.get("EDGECNN_NO_OPENMP") == "1":
        return []
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler.split()[0]) is None:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "omp.c")
        with open(source, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        result = subprocess.run(compiler.split() + ["-fopenmp", source, "-o",
                                                    os.path.join(tmp, "omp")],
                                capture_output=True)
    return ["-fopenmp"] if result.returncode == 0 else []


OPENMP = openmp_flags()
extensions = [Extension("edgecnn._core", ["edgecnn/_core.pyx"],
                        include_dirs=["edgecnn", "firmware_export/runtime"],
                        depends=["edgecnn/_core_simd.h", "edgecnn/_core_kernels.inc",
                                 "edgecnn/_core_transpose.h",
                                 "firmware_export/runtime/ec_gemm_s8.h",
                                 "firmware_export/runtime/ec_a64_neon.h"],
                        extra_compile_args=COMPILE_ARGS + OPENMP, extra_link_args=OPENMP)]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
