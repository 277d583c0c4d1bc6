"""Readers for QEMU's trace backends; each returns the same columnar Segment.

``parsers.registry`` lists the backends (the built-in readers are imported on first use) and
detects which one reads an input; ``parsers.reading`` reads a set of inputs.
"""

import os

# Nothing in migtrace uses BLAS; an idle OpenBLAS thread pool only competes for the CPU.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
