"""Per-thread timeline of a trace: spans (begin/end pairs), instants and migration phases.

What pairs with what is data (``spans.toml``, compiled by :mod:`tracetool._timeline.rules`);
:mod:`~tracetool._timeline.builder` applies the rules over whole event columns
(:func:`~tracetool._timeline.builder.build_timeline`), pairing begins with ends in
:mod:`~tracetool._timeline.pairing`; the result is a :class:`~tracetool._timeline.result.Timeline`,
and :mod:`~tracetool._timeline.queries` answers questions about it (``enclosing``, ``select``).
Import names from the module that defines them.
"""
