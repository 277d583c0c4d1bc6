"""Capturing real QEMU live migrations on this machine (``migtrace capture``).

A destination and a source ``qemu-system-x86_64`` on loopback migrate a tiny guest that keeps
dirtying its RAM, with the trace events migtrace's analyses read enabled; each run writes one
folder of traces and sidecars in the layout of the recorded traces migtrace ships with. Modules:
``scenarios`` (+ ``scenarios.toml``: what each scenario does), ``events`` (its -trace list),
``guest`` (the guest kernel), ``qemu`` (binaries, command lines, processes), ``qmp`` (the QMP
client), ``sampler`` (thread names), ``session``/``migrate``/``record``/``run`` (one run) and
``driver`` (repeated runs over several builds, ``capture.json``).

    from tracetool._capture.driver import CapturePlan, capture, resolve_builds
"""
