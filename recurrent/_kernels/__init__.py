"""Compiled Cython/OpenMP kernels (built by setup.py from the .pyx files here).

Python code calls them through callers that check the arrays first (the cells in
recurrent_plugins.cells, recurrent.clip, recurrent.optim, recurrent.quant), or for the
settings and facts they expose (recurrent.threads, recurrent.tuning), never directly with
unchecked arrays: the kernels trust shapes, dtypes and contiguity.
"""
