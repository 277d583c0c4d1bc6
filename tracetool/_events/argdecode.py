"""Typed argument decoding, dispatched on how a reader stored the arguments.

Text backends (log, ftrace, SystemTap) store QEMU's printf output; the catalog's format strings
decode it. Other encodings (LTTng fields, simple-backend bytes) register their own decoder here,
so every analysis sees the same columns whichever backend recorded the trace.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import pyarrow as pa

from parsers.segment import ARGS_TEXT
from tracetool._events.catalog import Catalog, DecodedText

Decoder = Callable[[Catalog, str, pa.Array, Collection[str] | None], DecodedText]
"""``(catalog, event, values, only)``: ``only`` names the fields wanted (None: all)."""

_DECODERS: dict[str, Decoder] = {}


def register_decoder(encoding: str, decoder: Decoder) -> None:
    """Makes ``decoder`` handle argument tables stored with ``encoding``."""
    _DECODERS[encoding] = decoder


def decode(
    encoding: str, catalog: Catalog, event: str, values: pa.Array, only: Collection[str] | None = None
) -> DecodedText:
    """Decodes the argument ``values`` (unique texts or payloads) of ``event``; ``only``: the
    fields wanted (None: all), the others are not converted."""
    try:
        fn = _DECODERS[encoding]
    except KeyError:
        raise ValueError(f"no argument decoder for encoding {encoding!r}") from None
    return fn(catalog, event, values, only)


def _decode_text(catalog: Catalog, event: str, values: pa.Array, only: Collection[str] | None) -> DecodedText:
    return catalog.decode_text(event, values, only)


register_decoder(ARGS_TEXT, _decode_text)

# Backends with their own argument encodings register their decoders (and renderers) in these
# modules; importing them here keeps the registration in one place.
ENCODING_MODULES = ("tracetool._events.decode_lttng", "tracetool._events.decode_simple")


def _load_encoding_modules() -> None:
    import importlib
    import importlib.util

    for name in ENCODING_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


_load_encoding_modules()
