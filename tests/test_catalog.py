"""The built-in event catalog against real traces, across QEMU eras, and with user files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from parsers.log import LogInput, read_log_inputs
from parsers.segment import Segment
from tracetool._events.catalog import Catalog
from tracetool._events.eventdefs import EventDef, TraceEventsError, load_trace_events, parse_trace_events
from tracetool._events.printf_format import split_format

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
DEBIAN_72 = "/usr/share/qemu/trace-events-all"
# The threadify build's own trace-events-all is not shipped (it is QEMU's file); point
# MIGTRACE_THREADIFY_TRACE_EVENTS at a copy to check the catalog against it too.
THREADIFY = os.environ.get("MIGTRACE_THREADIFY_TRACE_EVENTS", "/nonexistent/trace-events-all")


def _texts_by_name(segments: list[Segment]) -> dict[str, pa.Array]:
    """Distinct argument texts per event name over ``segments`` (read by one scanner)."""
    if not segments:
        return {}
    names = segments[0].names.to_list()  # one scanner: every segment shares the tables
    args = segments[0].args.values
    keys = np.concatenate(
        [(seg.name_code.astype(np.int64) << 32) | seg.args_code.astype(np.int64) for seg in segments]
    )
    pairs = np.sort(pc.unique(pa.array(keys)).to_numpy())
    name_codes = pairs >> 32
    arg_codes = pairs & 0xFFFFFFFF
    bounds = np.flatnonzero(np.diff(name_codes)) + 1
    out: dict[str, pa.Array] = {}
    for chunk_names, chunk_args in zip(
        np.split(name_codes, bounds), np.split(arg_codes, bounds), strict=True
    ):
        out[names[int(chunk_names[0])]] = args.take(pa.array(chunk_args))
    return out


@pytest.fixture(scope="module")
def samples() -> dict[str, dict[str, pa.Array]]:
    """Distinct argument texts per event name over every log file in sample_traces/:
    ``"all"``, and per QEMU generation (``"7.2"``, ``"threadify"``)."""
    paths = sorted(SAMPLES.glob("**/*.trace.xz"))
    assert len(paths) >= 15
    segments = read_log_inputs([LogInput(str(p)) for p in paths])
    era = [p.relative_to(SAMPLES).parts[0] for p in paths]
    return {
        "all": _texts_by_name(segments),
        "7.2": _texts_by_name([s for s, e in zip(segments, era, strict=True) if e == "qemu-7.2"]),
        "threadify": _texts_by_name([s for s, e in zip(segments, era, strict=True) if e == "qemu-threadify"]),
    }


@pytest.fixture(scope="module")
def sample_texts(samples: dict[str, dict[str, pa.Array]]) -> dict[str, pa.Array]:
    return samples["all"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.builtin()


# --- real traces -----------------------------------------------------------------------------


def test_every_sample_event_is_catalogued(sample_texts: dict[str, pa.Array], catalog: Catalog) -> None:
    assert len(sample_texts) > 150
    missing = sorted(n for n in sample_texts if not catalog.is_known(n))
    assert missing == []


def test_every_sample_text_decodes(sample_texts: dict[str, pa.Array], catalog: Catalog) -> None:
    failures = {}
    total = 0
    for name, texts in sample_texts.items():
        decoded = catalog.decode_text(name, texts)
        total += len(texts)
        assert len(decoded.frame) == len(texts)
        if not decoded.matched.all():
            failures[name] = texts.filter(pa.array(~decoded.matched)).to_pylist()[:3]
    assert failures == {}
    assert total > 100_000


def test_mutex_fields_match_the_raw_text(sample_texts: dict[str, pa.Array], catalog: Catalog) -> None:
    for name, verb in (
        ("qemu_mutex_lock", "waiting on"),
        ("qemu_mutex_locked", "taken"),
        ("qemu_mutex_unlock", "released"),
    ):
        texts = sample_texts[name].to_pylist()
        assert len(texts) > 100
        frame = catalog.decode_text(name, texts).frame
        for i, text in enumerate(texts):
            # e.g. "released mutex 0x55861b3958a0 (./include/qemu/thread.h:128)"
            head, site = text[len(verb) + 1 :].split(" (", 1)
            assert head.startswith("mutex 0x")
            file, line = site[:-1].rsplit(":", 1)
            assert frame["mutex"][i] == int(head.split()[1], 16)
            assert frame["file"][i] == file
            assert frame["line"][i] == int(line)
    files = set(catalog.decode_text("qemu_mutex_unlock", sample_texts["qemu_mutex_unlock"]).frame["file"])
    assert any(f.endswith("softmmu/cpus.c") for f in files)
    assert any(f.endswith("system/cpus.c") for f in files)


def test_startfull_fields_match_the_raw_text(sample_texts: dict[str, pa.Array], catalog: Catalog) -> None:
    texts = sample_texts["qemu_loadvm_state_section_startfull"].to_pylist()
    frame = catalog.decode_text("qemu_loadvm_state_section_startfull", texts).frame
    seen_space = False
    for i, text in enumerate(texts):
        section_id, rest = text.split("(", 1)
        idstr, numbers = rest.rsplit(") ", 1)
        instance_id, version_id = numbers.split(" ")
        seen_space |= " " in idstr
        assert frame["section_id"][i] == int(section_id)
        assert frame["idstr"][i] == idstr
        assert frame["instance_id"][i] == int(instance_id)
        assert frame["version_id"][i] == int(version_id)
    assert "ram" in set(frame["idstr"])


def test_postcopy_loop_channel_matches_the_raw_text(
    sample_texts: dict[str, pa.Array], catalog: Catalog
) -> None:
    texts = sample_texts["ram_load_postcopy_loop"].to_pylist()
    decoded = catalog.decode_text("ram_load_postcopy_loop", texts)
    assert (decoded.variant == 0).all()
    chan = [int(t.split()[0].removeprefix("chan=")) for t in texts]
    addr = [int(t.split()[1].removeprefix("addr=0x"), 16) for t in texts]
    assert decoded.frame["channel"].tolist() == chan
    assert decoded.frame["addr"].tolist() == addr
    assert set(chan) == {0, 1}  # the preempt traces use both channels


def test_qmp_family_on_real_json(sample_texts: dict[str, pa.Array], catalog: Catalog) -> None:
    texts = sample_texts["qmp_exit_query_migrate"].to_pylist()
    decoded = catalog.decode_text("qmp_exit_query_migrate", texts)
    assert decoded.matched.all()
    for i, text in enumerate(texts):
        body, ok = text.rsplit(" ", 1)
        assert decoded.frame["result"][i] == body
        assert decoded.frame["succeeded"][i] == int(ok)


def test_null_strings_in_real_traces(sample_texts: dict[str, pa.Array], catalog: Catalog) -> None:
    texts = sample_texts["migrate_handle_rp_req_pages"].to_pylist()
    frame = catalog.decode_text("migrate_handle_rp_req_pages", texts).frame
    nulls = [t.startswith("in (null) ") for t in texts]
    assert any(nulls)
    assert frame["rbname"].isna().tolist() == nulls


def test_incoming_end_event_per_era(samples: dict[str, dict[str, pa.Array]], catalog: Catalog) -> None:
    old = samples["7.2"]
    new = samples["threadify"]
    assert "process_incoming_migration_co_end" in old
    assert "process_incoming_migration_end" not in old
    assert "process_incoming_migration_end" in new
    assert "process_incoming_migration_co_end" not in new
    for texts, name in ((old, "process_incoming_migration_co_end"), (new, "process_incoming_migration_end")):
        decoded = catalog.decode_text(name, texts[name])
        assert decoded.matched.all()
        expected = [tuple(int(x.split("=")[1]) for x in t.split()) for t in texts[name].to_pylist()]
        got = list(zip(decoded.frame["ret"], decoded.frame["ps"], strict=True))
        assert got == expected
    assert "mark_postcopy_blocktime_begin" in catalog
    assert "postcopy_blocktime_begin" in catalog


# --- variants across eras --------------------------------------------------------------------


def test_ram_load_postcopy_loop_eras(catalog: Catalog) -> None:
    decoded = catalog.decode_text(
        "ram_load_postcopy_loop", ["chan=1 addr=0x200000 flags=0x8", "@201000 28", "nonsense"]
    )
    assert decoded.variant.tolist() == [0, 1, -1]
    assert decoded.matched.tolist() == [True, True, False]
    frame = decoded.frame
    assert list(frame.columns) == ["channel", "addr", "flags"]
    assert frame["channel"].tolist()[:2] == [1, pd.NA]
    assert frame["addr"].tolist()[:2] == [0x200000, 0x201000]
    assert frame["flags"].tolist()[:2] == [0x8, 0x28]
    assert catalog.variants("ram_load_postcopy_loop")[1].until == "7.0"


def test_loadvm_process_command_eras(catalog: Catalog) -> None:
    decoded = catalog.decode_text("loadvm_process_command", ["com=PING len=4", "com=0x3 len=16"])
    assert decoded.variant.tolist() == [1, 0]  # the number form is tried first
    frame = decoded.frame
    assert frame["s"].tolist() == ["PING", pd.NA]
    assert frame["com"].tolist() == [pd.NA, 3]
    assert frame["len"].tolist() == [4, 16]


def test_multifd_eras(catalog: Catalog) -> None:
    decoded = catalog.decode_text(
        "multifd_recv",
        [
            "channel 1 packet_num 7 pages 128 flags 0x0 next packet size 524288",
            "channel 2 packet_num 8 normal pages 100 zero pages 28 flags 0x1 next packet size 0",
        ],
    )
    assert decoded.matched.all()
    assert decoded.frame["used"].tolist() == [128, pd.NA]
    assert decoded.frame["normal"].tolist() == [pd.NA, 100]
    assert decoded.frame["zero"].tolist() == [pd.NA, 28]
    assert decoded.frame["next_packet_size"].tolist() == [524288, 0]

    end = catalog.decode_text(
        "multifd_recv_thread_end",
        [
            "channel 0 packets 10",
            "channel 0 packets 10 normal pages 5 zero pages 6",
            "channel 0 packets 10 pages 99",
        ],
    )
    assert end.variant.tolist() == [0, 1, 2]
    assert set(end.frame.columns) == {"id", "packets", "normal_pages", "zero_pages", "pages"}
    assert end.frame["pages"].tolist() == [pd.NA, pd.NA, 99]
    unfill = catalog.get("multifd_recv_unfill")
    assert unfill is not None and unfill.since == "9.2"


def test_vmstate_field_variant_order(catalog: Catalog) -> None:
    decoded = catalog.decode_text(
        "vmstate_load_state_field", ["pit channel:count exists=1", "timer:cpu_ticks_offset"]
    )
    assert decoded.variant.tolist() == [0, 1]
    assert decoded.frame["name"].tolist() == ["pit channel", "timer"]
    assert decoded.frame["exists"].tolist() == [1, pd.NA]


def test_unknown_name_decodes_nothing(catalog: Catalog) -> None:
    decoded = catalog.decode_text("no_such_event", ["a", "b"])
    assert decoded.matched.tolist() == [False, False]
    assert decoded.variant.tolist() == [-1, -1]
    assert decoded.frame.shape == (2, 0)
    assert catalog.get("no_such_event") is None


def test_union_of_conflicting_column_types() -> None:
    defs = parse_trace_events('e(int x, const char *s) "i%d %s"\ne(unsigned x, int s) "u%u %d"\n', "t")
    cat = Catalog(defs)
    decoded = cat.decode_text("e", ["i-3 hello", "u4000000000 7"])
    assert decoded.variant.tolist() == [0, 1]
    assert str(decoded.frame["x"].dtype) == "Int64"
    assert decoded.frame["x"].tolist() == [-3, 4000000000]
    assert decoded.frame["s"].dtype == pd.StringDtype("pyarrow")
    assert decoded.frame["s"].tolist() == ["hello", "7"]


# --- families and names ----------------------------------------------------------------------


def test_qmp_families(catalog: Catalog) -> None:
    enter = catalog.variants("qmp_enter_query_migrate")
    assert len(enter) == 1
    assert enter[0].name == "qmp_enter_query_migrate"
    assert [a.name for a in enter[0].args] == ["json"]
    assert catalog.is_known("qmp_exit_migrate_set_capabilities")
    assert "qmp_exit_migrate_set_capabilities" in catalog
    assert not catalog.is_known("qmp_enter_")
    assert not any("*" in n for n in catalog.names())
    assert "qmp_enter_query_migrate" not in catalog.names()
    decoded = catalog.decode_text("qmp_exit_quit", ["{} 1"])
    assert decoded.frame["result"].tolist() == ["{}"]


def test_brief_event_families_are_present(catalog: Catalog) -> None:
    for name in (
        "qemu_aio_coroutine_enter",
        "qemu_coroutine_yield",
        "qemu_coroutine_terminate",
        "aio_co_schedule",
        "aio_co_schedule_bh_cb",
        "runstate_set",
        "vm_state_notify",
        "handle_qmp_command",
        "monitor_qmp_respond",
        "monitor_qmp_in_band_dequeue",
        "vmstate_downtime_load",
        "vmstate_downtime_checkpoint",
        "loadvm_postcopy_handle_run_bh",
        "postcopy_blocktime_end",
        "get_mem_fault_cpu_index",
        "multifd_recv_unfill",
        "process_incoming_migration_postcopy_end_main",
        "process_incoming_migration_co_postcopy_end_main",
    ):
        assert name in catalog.names(), name
    assert catalog.get("vmstate_downtime_load").since == "8.2"  # type: ignore[union-attr]
    assert catalog.get("loadvm_postcopy_handle_run_bh").until == "8.1"  # type: ignore[union-attr]


def test_builtin_has_no_duplicate_variants_and_sane_versions(catalog: Catalog) -> None:
    def version(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))

    seen: dict[str, list[EventDef]] = {}
    for ev in catalog.definitions():
        sig = (tuple((a.ctype.replace(" ", ""), a.name) for a in ev.args), ev.fmt)
        assert sig not in [
            (tuple((a.ctype.replace(" ", ""), a.name) for a in o.args), o.fmt) for o in seen.get(ev.name, [])
        ], ev.signature()
        seen.setdefault(ev.name, []).append(ev)
        if ev.since and ev.until:
            assert version(ev.since) <= version(ev.until), ev.signature()
        assert ev.source.startswith("catalog/")


def _printed(ev: EventDef) -> str:
    """A text ``ev`` could print, written from its format by hand-picked sample values."""
    samples = {
        "int": "-12",
        "uint": "12",
        "hex": "1f",
        "ptr": "0x7f00",
        "str": "pit channel",
        "char": "c",
        "float": "1.5",
    }
    out = []
    for part in split_format(ev.fmt):
        if isinstance(part, str):
            out.append(part)
        elif part.kind is not None:
            kind = part.kind
            if part.conv == "o":
                kind = "uint"
            out.append(samples[kind])
    return "".join(out)


def test_no_variant_is_shadowed_by_an_earlier_one(catalog: Catalog) -> None:
    """A text printed by any variant decodes with that variant, not an earlier one."""
    checked = 0
    for name in sorted(catalog.names()):
        variants = catalog.variants(name)
        if len(variants) < 2:
            continue
        texts = [_printed(v) for v in variants]
        decoded = catalog.decode_text(name, texts)
        assert decoded.variant.tolist() == list(range(len(variants))), (name, texts)
        checked += 1
    assert checked >= 15


@pytest.mark.parametrize("path", [DEBIAN_72, THREADIFY])
def test_catalog_agrees_with_real_trace_events_all(path: str, catalog: Catalog) -> None:
    """Where a real build defines one of our events, one of our variants is that definition."""
    if not os.path.exists(path):
        pytest.skip(f"{path} not available")
    real = {e.name: e for e in load_trace_events(path)}

    def sig(e: EventDef) -> tuple[object, ...]:
        return tuple(a.ctype.replace(" ", "") for a in e.args), e.fmt

    checked = 0
    for name in catalog.names():
        if name in real:
            checked += 1
            assert sig(real[name]) in [sig(v) for v in catalog.variants(name)], name
    assert checked > 150
    generated = [n for n in real if n.startswith(("qmp_enter_", "qmp_exit_"))]
    assert len(generated) > 100
    for name in generated:
        assert [sig(v) for v in catalog.variants(name)] == [sig(real[name])], name


# --- user files ------------------------------------------------------------------------------


def test_user_file_overrides_and_extends(tmp_path: Path, catalog: Catalog) -> None:
    events = tmp_path / "trace-events-all"
    events.write_text(
        "# my patched QEMU\n"
        "ram_load_postcopy_loop(int channel, uint64_t addr, int flags, int tid) "
        '"chan=%d addr=0x%" PRIx64 " flags=0x%x tid=%d"\n'
        'my_new_event(const char *what, uint64_t ns) "%s took %" PRIu64 " ns"\n'
    )
    mine = catalog.with_files([str(events)])
    variants = mine.variants("ram_load_postcopy_loop")
    assert variants[0].source == str(events)
    assert [v.source for v in variants[1:]] == [v.source for v in catalog.variants("ram_load_postcopy_loop")]
    decoded = mine.decode_text(
        "ram_load_postcopy_loop", ["chan=1 addr=0x1000 flags=0x8 tid=4242", "chan=0 addr=0x2000 flags=0x28"]
    )
    assert decoded.variant.tolist() == [0, 1]
    assert decoded.frame["tid"].tolist() == [4242, pd.NA]
    assert "my_new_event" in mine.names()
    assert "my_new_event" not in catalog.names()
    got = mine.decode_text("my_new_event", ["pit channel took 18446744073709551615 ns"])
    assert got.frame["what"].tolist() == ["pit channel"]
    assert got.frame["ns"].tolist() == [2**64 - 1]
    # The built-in catalog object is unchanged.
    assert catalog.variants("ram_load_postcopy_loop")[0].source.startswith("catalog/")


def test_user_file_same_definition_is_not_duplicated(tmp_path: Path, catalog: Catalog) -> None:
    events = tmp_path / "trace-events"
    events.write_text(
        'qemu_mutex_lock(void *mutex, const char *file, const int line) "waiting on mutex %p (%s:%d)"\n'
    )
    mine = catalog.with_files([str(events)])
    assert len(mine.variants("qemu_mutex_lock")) == len(catalog.variants("qemu_mutex_lock"))
    assert mine.variants("qemu_mutex_lock")[0].source == str(events)


def test_user_file_errors(tmp_path: Path, catalog: Catalog) -> None:
    bad = tmp_path / "trace-events"
    bad.write_text('ok(void) ""\nbroken(int x "%d"\n')
    with pytest.raises(TraceEventsError, match=re.escape(f"{bad}:2: ")):
        catalog.with_files([str(bad)])
    with pytest.raises(TraceEventsError, match="cannot read"):
        catalog.with_files([str(tmp_path / "missing")])
