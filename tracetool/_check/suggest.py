"""Close matches for a misspelt name, the way every rules error names them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean: a, b?)`` or an empty string."""
    close = difflib.get_close_matches(word, list(dict.fromkeys(candidates)), n=3, cutoff=0.6)
    return f" (did you mean: {', '.join(close)}?)" if close else ""
