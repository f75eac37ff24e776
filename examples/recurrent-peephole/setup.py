"""Build: the compiled peephole cell, src/recurrent_peephole/_kernel.pyx, against
recurrent's kernel toolkit (recurrent_toolkit.pxd / .h in recurrent.get_include()).
Everything else is in pyproject.toml. Install after recurrent, without build isolation:
    pip install --no-build-isolation ./examples/recurrent-peephole
"""
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

try:
    import recurrent
except ImportError:
    sys.exit("recurrent-peephole compiles against the installed recurrent, which this build "
             "cannot import (not installed, or hidden by an isolated build): install "
             "recurrent, then: pip install --no-build-isolation ./examples/recurrent-peephole")

REQUIRED_TOOLKIT = 1  # the toolkit API version this cell is written for
if recurrent.TOOLKIT_API_VERSION < REQUIRED_TOOLKIT:
    sys.exit(f"recurrent-peephole needs recurrent's kernel toolkit API "
             f"{REQUIRED_TOOLKIT} or later; the installed recurrent has "
             f"{recurrent.TOOLKIT_API_VERSION}")

# OpenMP as recurrent was built (its kernels and this one share the thread rule), -O3 and
# -fno-trapping-math (lets gcc vectorise the clamps of the fast activations; no value
# changes), as recurrent's own setup.py.
openmp = ["-fopenmp"] if recurrent.openmp_enabled() else []
extension = Extension(
    "recurrent_peephole._kernel", ["src/recurrent_peephole/_kernel.pyx"],
    include_dirs=[recurrent.get_include(), numpy.get_include(), "src/recurrent_peephole"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=["-O3", "-fno-trapping-math"] + openmp,
    extra_link_args=openmp,
    depends=["src/recurrent_peephole/peephole_gates.h"],
)

setup(ext_modules=cythonize(
    [extension], include_path=[recurrent.get_include()],
    compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False,
                         "cdivision": True, "initializedcheck": False}))
