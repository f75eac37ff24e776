"""Compiled Cython/OpenMP kernels (built by setup.py from the .pyx files here).

Python code calls them through the cells in recurrent_plugins.cells and recurrent.clip,
never directly with unchecked arrays: the kernels trust shapes, dtypes and contiguity.
"""
