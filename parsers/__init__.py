"""Readers for QEMU's trace backends; each returns the same columnar Segment.

``parsers.registry`` lists the backends and detects which one reads an input.
"""

import os

# Nothing in migtrace uses BLAS; an idle OpenBLAS thread pool only competes for the CPU.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from parsers import log as _log  # noqa: E402
from parsers.registry import register  # noqa: E402

register(_log.BACKEND)
