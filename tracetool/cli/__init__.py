"""The ``migtrace`` command line: a thin layer over ``tracetool``.

Each command lives in its own module, named after it, and registers itself on ``common.app``;
:mod:`tracetool.cli.main` imports them all, the ``migtrace`` process only the one it runs
(:mod:`tracetool.cli.commands`, :mod:`tracetool.cli.launch`). Every command parses its options,
loads the trace, runs one analysis and hands the result to a renderer in ``reports``. Errors
become one line on stderr and exit code 2 (see ``common.run``).
"""
