"""Pure-Python twin of the compiled scanner in ``_scan.c``.

Used when the C extension was not built (no compiler on the machine), and by the tests as an
independent implementation: both must split every line identically. Same interface as the
compiled ``Scanner`` (``scanner.Scanner``): ``scan``, ``scan_ftrace``, ``scan_lttng``,
``take_rows``, ``absorb``, ``table``. One module per line grammar (``log``, ``ftrace``,
``lttng``), the rows and interned tables they fill in ``rows``, what they share in ``text``.
"""
