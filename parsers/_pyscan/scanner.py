"""The Python scanner: every line grammar over one set of rows and tables."""

from __future__ import annotations

from parsers._pyscan.ftrace import FtraceScan
from parsers._pyscan.log import LogScan
from parsers._pyscan.lttng import LttngScan


class Scanner(LogScan, FtraceScan, LttngScan):
    """Splits QEMU text trace lines into interned columns (pure Python)."""
