"""Readers for QEMU's trace backends; each returns the same columnar Segment.

``parsers.registry`` lists the backends and detects which one reads an input. Each reader
module named in ``BACKEND_MODULES`` exposes ``BACKENDS`` (a list of ``registry.Backend``); they
are registered in this order, which also breaks ties between equal detection scores.
"""

import importlib
import importlib.util
import os

# Nothing in migtrace uses BLAS; an idle OpenBLAS thread pool only competes for the CPU.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from parsers.registry import register

BACKEND_MODULES = ("log", "simple", "ftrace", "lttng")

for _name in BACKEND_MODULES:
    if importlib.util.find_spec(f"parsers.{_name}") is None:
        continue
    for _backend in importlib.import_module(f"parsers.{_name}").BACKENDS:
        register(_backend)
