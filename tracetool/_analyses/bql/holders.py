"""Who a BQL event belongs to: a thread (thread ids) or a thread role (call-site attribution)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tracetool._model.trace import Trace


def categorical(codes: np.ndarray, labels: Sequence[Any]) -> pd.Categorical:
    """Categorical from codes into ``labels`` (which may repeat or hold None; -1: missing)."""
    lab_codes, uniques = pd.factorize(pd.Series(list(labels), dtype=object), use_na_sentinel=True)
    lab = np.r_[np.asarray(lab_codes, dtype=np.int64), -1]
    mapped = lab[np.where(codes >= 0, codes, len(lab) - 1)]
    return pd.Categorical.from_codes(mapped, categories=pd.Index(list(uniques), dtype=object), validate=False)


def fixed_categorical(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    """Categorical over a fixed vocabulary (-1: missing)."""
    return pd.Categorical.from_codes(
        codes.astype(np.int64), categories=pd.Index(list(categories), dtype=object)
    )


class Holders:
    """Who an event belongs to: a thread (thread ids) or a role (call-site attribution).

    A holder key is an index into ``tids`` / ``names`` / ``roles``; ``key_of`` gives the key of
    each BQL event (by its thread, or by the role of its call site).
    """

    def __init__(
        self, trace: Trace, thread: np.ndarray, site: np.ndarray, site_role: np.ndarray | None, label: str
    ) -> None:
        th = trace.threads
        self.label = label
        self.by_site = site_role is not None
        if site_role is None:
            self.key_of = thread
            self.tids = th["tid"].to_numpy(dtype=np.int64, na_value=-1)
            names = th["name"].astype(object).to_numpy()
            self.names: list[str | None] = [None if pd.isna(n) else str(n) for n in names]
            self.roles = [str(r) for r in th["role"].astype(str)]
        else:
            roles = sorted(set(site_role.tolist()))
            role_code = np.array([roles.index(r) for r in site_role.tolist()], np.int64)
            self.key_of = role_code[site]
            self.tids = np.full(len(roles), -1, dtype=np.int64)
            self.names = [None] * len(roles)
            self.roles = roles

    def columns(self, key: np.ndarray) -> dict[str, Any]:
        """process, tid, thread and role columns for holder keys (-1: nobody known)."""
        tid = self.tids[np.maximum(key, 0)] if len(key) else np.zeros(0, np.int64)
        return {
            "process": fixed_categorical(np.zeros(len(key), np.int64), [self.label]),
            "tid": pd.arrays.IntegerArray(tid.astype(np.int64), (key < 0) | (tid < 0)),
            "thread": categorical(key, self.names),
            "role": categorical(key, self.roles),
        }

    def tid_of(self, key: np.ndarray) -> np.ndarray:
        """The thread id of each holder key (-1: none known)."""
        if not len(key):
            return np.zeros(0, np.int64)
        return np.where(key >= 0, self.tids[np.maximum(key, 0)], -1)

    def describe(self, key: int) -> tuple[int | None, str | None, str]:
        """tid, name and role of one holder key."""
        tid = int(self.tids[key])
        return (tid if tid >= 0 else None), self.names[key], self.roles[key]
