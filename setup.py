"""Build: every recurrent/_kernels/*.pyx becomes an extension compiled with OpenMP, and
plugins/forecast/_smoothing.pyx one without it (and without fused multiply-adds).

OpenMP support is probed at build time by compiling a tiny program with -fopenmp.
Without it the kernels still build (single-threaded) and the build says so loudly;
recurrent.openmp_enabled() reports which build you got.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) { int n = 0;
#pragma omp parallel reduction(+:n)
  n += 1;
  return n > 0 ? 0 : 1; }
"""


def openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or ([], []) if the compiler lacks it."""
    if os.environ.get("RECURRENT_NO_OPENMP"):
        return [], []
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()[0]
    if shutil.which(cc) is None:
        return [], []
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        result = subprocess.run([cc, "-fopenmp", src, "-o", os.path.join(tmp, "probe")],
                                capture_output=True)
    if result.returncode != 0:
        return [], []
    return ["-fopenmp"], ["-fopenmp"]


compile_omp, link_omp = openmp_flags()
if not compile_omp:
    banner = "#" * 78
    sys.stderr.write(
        f"\n{banner}\n# WARNING: the C compiler has no OpenMP support: recurrent's kernels will be\n"
        f"# built SINGLE-THREADED. Install a compiler with OpenMP (gcc, or clang + libomp)\n"
        f"# and reinstall to use more than one core.\n{banner}\n\n")

# -g0 over the -g of Python's own CFLAGS: debug information changes no instruction, and
# would be most of the installed size of the extensions.
no_debug_info = ["-g0"]
# No -ffast-math: it changes exp/tanh results and NaN handling. -fno-trapping-math changes
# no value; it lets gcc vectorise loops with selects (the gate kernels' exp/tanh clamps).
compile_args = ["-O3", "-fno-trapping-math"] + no_debug_info + compile_omp

extensions = [
    Extension(
        "recurrent._kernels." + os.path.splitext(os.path.basename(path))[0],
        [path],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_omp,
        # the kernels' C headers and Cython declarations: rebuild when they change
        depends=sorted(glob.glob(os.path.join("recurrent", "_kernels", "*.h"))
                       + glob.glob(os.path.join("recurrent", "_kernels", "*.pxd"))),
    )
    for path in sorted(glob.glob(os.path.join("recurrent", "_kernels", "*.pyx")))
] + [
    # forecast's learned smoothing recursions: bitwise the Python loops they replace, so
    # each double operation is rounded on its own: no fused multiply-add, no OpenMP
    Extension(
        "recurrent_plugins.forecast._smoothing",
        [os.path.join("plugins", "forecast", "_smoothing.pyx")],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", "-ffp-contract=off"] + no_debug_info,
    ),
]

packages = find_packages(include=["recurrent", "recurrent.*"])
plugin_packages = ["recurrent_plugins"] + [
    "recurrent_plugins." + p for p in find_packages(where="plugins")]
# Each task's bundled data directory (no __init__.py) is listed as a package of data
# files, as setuptools expects of a directory it installs.
data_packages = [p + ".data" for p in plugin_packages
                 if os.path.isdir(os.path.join("plugins", *p.split(".")[1:], "data"))]

setup(
    packages=packages + plugin_packages + data_packages,
    package_dir={"recurrent_plugins": "plugins"},
    package_data={**{p: ["*"] for p in data_packages},
                  "recurrent._kernels": ["*.pxd", "*.h"]},
    # the C that cythonize writes beside each .pyx (the extensions' sources, which
    # setuptools would otherwise install too) is compiled into the .so files: not installed
    exclude_package_data={"recurrent._kernels": ["*.c"], "recurrent_plugins.forecast": ["*.c"]},
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
    ),
    zip_safe=False,
)
