"""``migtrace capture`` without running a migration: scenarios, events, guest, labels, errors.

The runs themselves are tested against real QEMU in test_capture_e2e.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO
from tracetool._capture.driver import Build, resolve_builds, run_order
from tracetool._capture.errors import CaptureError
from tracetool._capture.events import scenario_events
from tracetool._capture.guest import MULTIBOOT_MAGIC, dirty_range, guest_kernel
from tracetool._capture.qemu import version_label
from tracetool._capture.scenarios import ScenarioError, parse_scenarios, scenarios

EVENTS_TOML = REPO / "tracetool" / "_analyses" / "events.toml"


def _patterns(events_file: str) -> list[str]:
    return [ln for ln in events_file.splitlines() if ln and not ln.startswith("#")]


def _analysis_patterns(analysis: str, generation: str) -> list[str]:
    """The analysis's patterns for a generation, read straight from events.toml."""
    data = tomllib.loads(EVENTS_TOML.read_text())
    return [
        e["pattern"] for e in data["analysis"][analysis]["event"] if generation in e.get("qemu", [generation])
    ]


def test_every_packaged_scenario_is_complete() -> None:
    known = scenarios()
    assert {"precopy", "precopy-mutex", "postcopy", "postcopy-preempt", "multifd", "cancel", "colo"} <= set(
        known
    )
    analyses = set(tomllib.loads(EVENTS_TOML.read_text())["analysis"])
    for sc in known.values():
        assert sc.description and sc.capabilities and sc.expect_source
        assert set(sc.analyses) <= analyses, sc.name
    # extends: precopy-mutex keeps precopy's actions and adds the BQL analysis
    assert known["precopy-mutex"].actions == known["precopy"].actions
    assert "bql" in known["precopy-mutex"].analyses and "bql" not in known["precopy"].analyses
    assert [a.do for a in known["postcopy"].actions] == ["start-postcopy"]
    assert [a.do for a in known["cancel"].actions] == ["cancel"]
    assert known["cancel"].expect_source == "cancelled"
    assert "x-colo" in known["colo"].capabilities
    assert [a.do for a in known["colo"].actions] == ["failover"]


def test_colo_needs_kvm_and_says_why() -> None:
    colo = scenarios()["colo"]
    problem = colo.accel_problem("tcg")
    assert problem is not None and "--accel kvm" in problem and "deadlock" in problem
    assert colo.accel_problem("kvm") is None
    assert scenarios()["precopy"].accel_problem("tcg") is None


def test_scenario_events_come_from_the_analyses_event_data() -> None:
    mutex = _patterns(scenario_events(scenarios()["precopy-mutex"], (7, 2, 22)))
    plain = _patterns(scenario_events(scenarios()["precopy"], (7, 2, 22)))
    for pattern in _analysis_patterns("bql", "7.2") + _analysis_patterns("phases", "7.2"):
        assert pattern in mutex
    assert "qemu_mutex_lock" not in plain
    # 10.1-only events stay out of a 7.2 list and are in a 10.1 one
    only_new = set(_analysis_patterns("phases", "10.1")) - set(_analysis_patterns("phases", "7.2"))
    assert only_new and not only_new & set(plain)
    assert only_new <= set(_patterns(scenario_events(scenarios()["precopy"], (10, 1, 50))))
    colo = _patterns(scenario_events(scenarios()["colo"], (7, 2, 22)))
    assert "colo_*" in colo
    # every scenario records what the downtime analysis reads on both sides
    for sc in scenarios().values():
        assert set(_analysis_patterns("downtime", "7.2")) <= set(_patterns(scenario_events(sc, (7, 2, 22))))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[scenario.a]\ndescription="x"\nextends="b"\n[scenario.b]\nextends="a"', "loops"),
        ('[scenario.a]\nextends="nope"', "unknown scenario"),
        ('[scenario.a]\ndescription="x"', "missing key"),
        (
            '[defaults]\nmachine="q35"\ncapabilities=[]\nparameters={}\nanalyses=[]\n'
            'expect={source="completed"}\n[scenario.a]\ndescription="x"\n'
            '[[scenario.a.action]]\ndo="reboot"\nat_sync=1',
            "unknown action",
        ),
        (
            '[defaults]\nmachine="q35"\ncapabilities=[]\nparameters={}\nanalyses=[]\n'
            'expect={source="completed"}\n[scenario.a]\ndescription="x"\n'
            '[[scenario.a.action]]\ndo="cancel"',
            "at_sync or in_state",
        ),
        (
            '[defaults]\nmachine="q35"\ncapabilities=[]\nparameters={}\nanalyses=[]\n'
            'expect={source="completed"}\n[scenario.a]\ndescription="x"\nsmp="two"',
            "smp must be",
        ),
        (
            '[defaults]\nmachine="q35"\ncapabilities=[]\nparameters={}\nanalyses=[]\n'
            'expect={source="completed"}\n[scenario.a]\ndescription="x"\ndevices="-device e1000"',
            "devices must be",
        ),
    ],
)
def test_bad_scenario_data_is_refused(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenarios(text)


def test_guest_kernel_is_a_multiboot_image_that_dirties_the_range() -> None:
    start, end = dirty_range(64)
    assert (start, end) == (0x200000, 0x200000 + 8 * 1024 * 1024)
    k = guest_kernel(start, end)
    words = [int.from_bytes(k.image[i : i + 4], "little") for i in range(0, 32, 4)]
    magic, flags, checksum, header_addr, load_addr, load_end, _bss, entry = words
    assert magic == MULTIBOOT_MAGIC
    assert (magic + flags + checksum) % (1 << 32) == 0  # the multiboot checksum rule
    assert flags & (1 << 16)
    assert header_addr == load_addr and load_end - load_addr == len(k.image)
    assert load_addr < entry < k.loop_start < k.loop_end <= load_end
    # the loop's immediates: mov eax, start ... add eax, 4096 ... cmp eax, end
    assert b"\xb8" + start.to_bytes(4, "little") in k.image
    assert b"\x05" + (4096).to_bytes(4, "little") in k.image
    assert b"\x3d" + end.to_bytes(4, "little") in k.image
    with pytest.raises(ValueError):
        guest_kernel(0x100000, 0x200000)  # would overwrite the kernel


def test_runs_alternate_builds() -> None:
    a, b = Build("/q/a", "a", ""), Build("/q/b", "b", "")
    assert [(k, x.label) for k, x in run_order([a, b], 3)] == [
        (1, "a"),
        (1, "b"),
        (2, "a"),
        (2, "b"),
        (3, "a"),
        (3, "b"),
    ]


def test_version_labels() -> None:
    assert (
        version_label(
            "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"
            "Copyright (c) 2003-2022 Fabrice Bellard"
        )
        == "qemu-7.2.22"
    )
    assert version_label("QEMU emulator version 10.1.50 (v10.1.0-1234-gabc)") == "qemu-10.1.50"
    assert version_label("something else") == "qemu"


def _fake_qemu(path: Path, version: str) -> str:
    """A stand-in binary that only answers --version (label logic, no migration)."""
    path.write_text(f"#!/bin/sh\necho 'QEMU emulator version {version} (test)'\n")
    path.chmod(0o755)
    return str(path)


def test_same_version_twice_gets_distinct_labels(tmp_path: Path) -> None:
    one = _fake_qemu(tmp_path / "one", "9.0.1")
    two = _fake_qemu(tmp_path / "two", "9.0.1")
    other = _fake_qemu(tmp_path / "other", "10.1.50")
    labels = [b.label for b in resolve_builds([one, other, two], [])]
    assert labels == ["qemu-9.0.1-1", "qemu-10.1.50", "qemu-9.0.1-2"]
    assert [b.label for b in resolve_builds([one, two], ["old", "new"])] == ["old", "new"]
    with pytest.raises(CaptureError, match="must differ"):
        resolve_builds([one, two], ["x", "x"])
    with pytest.raises(CaptureError, match="folder"):
        resolve_builds([one], ["../x"])


def _capture_cli(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "tracetool.cli", "capture", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def _one_line_exit_2(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("migtrace: "), res.stderr
    for w in words:
        assert w in lines[0]


def test_no_qemu_on_path(tmp_path: Path) -> None:
    res = _capture_cli("--out", str(tmp_path / "o"), path=str(tmp_path))
    _one_line_exit_2(res, "QEMU not found", "qemu-system-x86_64", "apt-get")
    assert not (tmp_path / "o").exists()


def test_qemu_that_is_not_executable(tmp_path: Path) -> None:
    plain = tmp_path / "qemu-system-x86_64"
    plain.write_text("not a program\n")
    _one_line_exit_2(_capture_cli("--qemu", str(plain), "--out", str(tmp_path / "o")), "not an executable")
    _one_line_exit_2(
        _capture_cli("--qemu", str(tmp_path / "missing"), "--out", str(tmp_path / "o")), "not an executable"
    )
    assert not (tmp_path / "o").exists()


def test_usage_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "o")
    _one_line_exit_2(_capture_cli("--scenario", "colo", "--out", out), "--accel kvm", "deadlock")
    _one_line_exit_2(_capture_cli("--scenario", "nope", "--out", out), "unknown scenario")
    _one_line_exit_2(
        _capture_cli("--qemu", "a", "--qemu", "b", "--label", "x", "--out", out), "one label per QEMU"
    )
    assert _capture_cli("--runs", "0", "--out", out).returncode == 2
    assert not Path(out).exists()
