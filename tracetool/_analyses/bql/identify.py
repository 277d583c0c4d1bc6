"""Which mutex is the BQL: the one released most often from the BQL unlock function."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tracetool._analyses.bql.events import MutexPart
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
        address = value
    else:
        text = value.strip().lower()
        try:
            address = int(text, 16) if text.startswith("0x") or re.search("[a-f]", text) else int(text)
        except ValueError:
            raise UsageError(f"--bql-addr {value!r}: not a mutex address (e.g. 0x55fafcce4540)") from None
    if not 0 <= address < 2**64:
        raise UsageError(f"--bql-addr {str(value)[:40]!r}: not a 64-bit address")
    return address


def site_key(site: np.ndarray, line: np.ndarray) -> np.ndarray:
    """One int64 per (site, line) pair: site in the high half, line in the low half."""
    return site.astype(np.int64) << 32 | (line.astype(np.int64) & 0xFFFFFFFF)


def identify_bql(
    unlocks: MutexPart, sites: SiteTable, in_process: np.ndarray | None
) -> tuple[int, str] | None:
    """The mutex with the most releases from the BQL unlock function, and why; None if none.

    ``in_process``: which unlock rows belong to the process (None: all). Ties go to the mutex
    (and the call site) released first. Counted per distinct argument text, not per row.
    """
    n_text = len(unlocks.readable)
    text = unlocks.text if in_process is None else unlocks.text[in_process]
    count = np.bincount(text, minlength=n_text)
    first = np.full(n_text, len(text), dtype=np.int64)
    np.minimum.at(first, text, np.arange(len(text), dtype=np.int64))
    site = np.maximum(unlocks.site, 0)
    from_fn = unlocks.readable & sites.unlock_fn[site] & (count > 0)
    cand = np.flatnonzero(from_fn)
    if not len(cand):
        return None
    addrs, per_mutex, first_of = _group(unlocks.mutex[cand], count[cand], first[cand])
    order = np.lexsort((first_of, -per_mutex))
    best = int(addrs[order[0]])
    total = int(count[unlocks.readable & (unlocks.mutex == np.uint64(best))].sum())
    mine = cand[unlocks.mutex[cand] == np.uint64(best)]
    keys, per_site, site_first = _group(
        site_key(site[mine], unlocks.site_line[mine]), count[mine], first[mine]
    )
    top = int(np.lexsort((site_first, -per_site))[0])
    where = sites.text(int(keys[top] >> 32), int(keys[top] & 0xFFFFFFFF))
    text_out = f"unlocks from {where} ({int(per_site[top])} of {total} releases)"
    if len(order) > 1:
        text_out += (
            f"; next candidate {int(addrs[order[1]]):#x} with {int(per_mutex[order[1]])} such releases"
        )
    return best, text_out


def _group(values: np.ndarray, count: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct values with their summed counts and earliest first appearance."""
    uniq, inverse = np.unique(values, return_inverse=True)
    summed = np.bincount(inverse, weights=count, minlength=len(uniq)).astype(np.int64)
    earliest = np.full(len(uniq), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, inverse, first)
    return uniq, summed, earliest
