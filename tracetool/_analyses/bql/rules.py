"""The BQL rules (``bql.toml``): which file releases the BQL, sites that never take it, how a
call site is shown, and which thread role takes the BQL at a call site."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class SiteRule:
    """A call site (path suffix; a directory when it ends with '/') and the role taking it."""

    path: str
    role: str
    side: str | None = None


@dataclass(frozen=True)
class BqlRules:
    """The contents of ``bql.toml``."""

    unlock_files: tuple[str, ...]
    not_bql_files: tuple[str, ...]
    top_dirs: frozenset[str]
    sites: tuple[SiteRule, ...]


@cache
def bql_rules() -> BqlRules:
    """Loads the BQL rules shipped with migtrace."""
    text = resources.files("tracetool._analyses.bql").joinpath("bql.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return BqlRules(
        unlock_files=tuple(data["identify"]["unlock_files"]),
        not_bql_files=tuple(data["not_bql"]["files"]),
        top_dirs=frozenset(data["paths"]["top_dirs"]),
        sites=tuple(SiteRule(r["path"], r["role"], r.get("side")) for r in data.get("site", [])),
    )


_LEADING_RELATIVE = re.compile(r"^(?:\.{1,2}/)+")


def normalize_site(path: str) -> str:
    """A call-site file as it sits in the QEMU tree: ``../src/system/cpus.c`` -> ``system/cpus.c``.

    Builds put ``__FILE__`` behind ``../``, ``../src/`` or an absolute prefix; the path is shown
    from its first QEMU top-level directory on, else (absolute or ``src/`` paths) by file name.
    """
    p = _LEADING_RELATIVE.sub("", path.replace("\\", "/"))
    parts = [x for x in p.split("/") if x]
    if len(parts) <= 1:
        return p
    top = bql_rules().top_dirs
    for i, part in enumerate(parts[:-1]):
        if part in top:
            return "/".join(parts[i:])
    if path.startswith("/") or "src" in parts[:-1]:
        return parts[-1]
    return p


def site_matches(path: str, pattern: str) -> bool:
    """Whether a normalised call-site path matches a rule path at a '/' boundary."""
    if pattern.endswith("/"):
        return path.startswith(pattern) or f"/{pattern}" in path
    return path == pattern or path.endswith("/" + pattern)


def role_of_site(path: str, side: str | None) -> str:
    """The thread role that takes the BQL at this call site (``unknown`` when no rule says)."""
    for rule in bql_rules().sites:
        if rule.side is not None and rule.side != side:
            continue
        if site_matches(path, rule.path):
            return rule.role
    return "unknown"
