"""Rendering binary argument payloads as the text the log backend would have printed.

``Trace.events["args"]`` shows text for every backend. Readers that store raw bytes (the simple
backend) register a renderer for their encoding here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from tracetool._model.trace import Trace

Renderer = Callable[["Trace", int, pa.Array], pa.Array]

_RENDERERS: dict[str, Renderer] = {}


def register_renderer(encoding: str, renderer: Renderer) -> None:
    """Makes ``renderer`` turn payloads stored with ``encoding`` into text."""
    _RENDERERS[encoding] = renderer


def render(encoding: str, trace: Trace, offset: int, values: pa.Array) -> pa.Array:
    """Text of each payload in ``values`` (the table whose first global args code is ``offset``)."""
    try:
        fn = _RENDERERS[encoding]
    except KeyError:
        raise ValueError(f"no renderer for argument encoding {encoding!r}") from None
    return fn(trace, offset, values)
