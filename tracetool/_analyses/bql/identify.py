"""Which mutex is the BQL: the one released most often from the BQL unlock function."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tracetool._analyses.bql.events import MutexEvents
from tracetool._analyses.bql.rules import bql_rules, normalize_site, site_matches
from tracetool.errors import UsageError


@dataclass(frozen=True)
class SiteTable:
    """Per call-site code: shown path and what the rules say about it."""

    label: np.ndarray  # object: normalised path
    unlock_fn: np.ndarray  # bool: the BQL unlock function's file
    not_bql: np.ndarray  # bool: a site that never takes the BQL

    @classmethod
    def of(cls, sites: list[str]) -> SiteTable:
        rules = bql_rules()
        norm = [normalize_site(s) for s in sites] or [""]
        return cls(
            np.array(norm, dtype=object),
            np.array([any(site_matches(n, u) for u in rules.unlock_files) for n in norm], bool),
            np.array([any(site_matches(n, u) for u in rules.not_bql_files) for n in norm], bool),
        )

    def text(self, site: int, line: int) -> str:
        """``system/cpus.c:575``."""
        return f"{self.label[site]}:{line}"


def parse_address(value: str | int) -> int:
    """A mutex address given by a user: ``0x55f...``, hex digits, or a decimal int."""
    if isinstance(value, int):
        return value
    text = value.strip().lower()
    try:
        return int(text, 16) if text.startswith("0x") or re.search("[a-f]", text) else int(text)
    except ValueError:
        raise UsageError(f"--bql-addr {value!r}: not a mutex address (e.g. 0x55fafcce4540)") from None


def site_key(site: np.ndarray, line: np.ndarray) -> np.ndarray:
    """One int64 per (site, line) pair: site in the high half, line in the low half."""
    return site.astype(np.int64) << 32 | (line.astype(np.int64) & 0xFFFFFFFF)


def identify_bql(unlocks: MutexEvents, sites: SiteTable, in_process: np.ndarray) -> tuple[int, str] | None:
    """The mutex with the most releases from the BQL unlock function, and why; None if none."""
    sel = in_process & sites.unlock_fn[unlocks.site]
    if not sel.any():
        return None
    codes, addrs = pd.factorize(unlocks.mutex[sel])
    counts = np.bincount(codes)
    order = np.argsort(-counts, kind="stable")
    best = int(addrs[order[0]])
    mine = sel & (unlocks.mutex == np.uint64(best))
    total = int((in_process & (unlocks.mutex == np.uint64(best))).sum())
    key = site_key(unlocks.site[mine], unlocks.site_line[mine])
    kc, kv = pd.factorize(key)
    top = int(np.argmax(np.bincount(kc)))
    site = sites.text(int(kv[top] >> 32), int(kv[top] & 0xFFFFFFFF))
    text = f"unlocks from {site} ({int(np.bincount(kc)[top])} of {total} releases)"
    if len(order) > 1:
        text += f"; next candidate {int(addrs[order[1]]):#x} with {int(counts[order[1]])} such releases"
    return best, text
