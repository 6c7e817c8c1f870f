"""Build the Cython core. Everything else is declared in pyproject.toml.

No numpy at build time (no `cimport numpy`) and no -march=native, so an sdist
builds on a Raspberry Pi with nothing but a C compiler.
"""

import os

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
COMPILE_ARGS = ["-O3", "-fwrapv"]
if os.environ.get("EDGECNN_NATIVE") == "1":
    # Opt-in: tune for this machine's CPU (AVX2/AVX-512 on x86, dotprod on ARM).
    # The wheel then only runs on CPUs like the build machine.
    COMPILE_ARGS.append("-march=native")

extensions = [Extension("edgecnn._core", ["edgecnn/_core.pyx"], extra_compile_args=COMPILE_ARGS)]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
