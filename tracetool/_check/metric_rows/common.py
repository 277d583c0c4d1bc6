"""What rows of several analyses share: the thread selectors and the events a figure needs."""

from __future__ import annotations

THREAD_SELECT = {"thread": "name", "role": "role", "tid": "tid", "load": "tid"}
"""Selectors of a table with one record per thread (``bql.threads``)."""
PHASE_THREAD_SELECT = {"thread": "thread", "role": "role", "tid": "tid", "load": "tid"}
"""Selectors of a table whose records name the thread that ran them (``phases``, ``devices``)."""
HOLDS = ("qemu_mutex_locked", "qemu_mutex_unlock")
WAITS = ("qemu_mutex_lock", "qemu_mutex_locked")
DEVICES = ("qemu_loadvm_state_section_startfull",)
