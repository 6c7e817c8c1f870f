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

extensions = [Extension("edgecnn._core", ["edgecnn/_core.pyx"],
                        # -fwrapv: int32 dot products wrap instead of being undefined (see _core.pyx)
                        extra_compile_args=["-O3", "-fwrapv"])]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
