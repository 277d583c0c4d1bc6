"""The trace-events grammar: QEMU's syntax, its corner cases, and clear errors."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tracetool._events.eventdefs import (
    ArgDef,
    EventDef,
    TraceEventsError,
    load_trace_events,
    parse_trace_events,
)

DEBIAN_72 = "/usr/share/qemu/trace-events-all"


def one(line: str) -> EventDef:
    events = parse_trace_events(line + "\n")
    assert len(events) == 1
    return events[0]


def test_comments_blank_lines_and_positions() -> None:
    text = (
        "# See docs/devel/tracing.rst for syntax documentation.\n"
        "\n"
        "   # indented comment\n"
        "# savevm.c\n"
        'first(int a) "a=%d"\n'
        "\n"
        'second(void) "# not a comment"\n'
    )
    events = parse_trace_events(text, "migration/trace-events")
    assert [e.name for e in events] == ["first", "second"]
    assert [e.line for e in events] == [5, 7]
    assert events[0].source == "migration/trace-events"
    assert events[1].fmt == "# not a comment"


def test_void_and_empty_argument_lists() -> None:
    assert one('loadvm_state_setup(void) ""').args == ()
    assert one('x() ""').args == ()
    assert one('loadvm_state_setup(void) ""').fmt == ""


def test_missing_format_means_empty_format() -> None:
    # Real QEMU 7.2/10.1 line: dirtylimit_state_finalize(void) with no format at all.
    ev = one("dirtylimit_state_finalize(void)")
    assert ev.fmt == ""


def test_disable_property() -> None:
    ev = one('disable qemu_mutex_lock(void *mutex) "waiting on %p"')
    assert ev.props == frozenset({"disable"})
    assert ev.disabled
    assert ev.name == "qemu_mutex_lock"
    assert not one('x(void) ""').disabled


def test_vcpu_property_adds_cpu_argument_and_prefix() -> None:
    ev = one('vcpu guest_cpu_reset(void) ""')
    assert ev.args == (ArgDef("void *", "__cpu"),)
    assert ev.fmt == "cpu=%p "
    ev = one('vcpu tcg guest_mem_before(uint16_t info) "info=%d"')
    assert [a.name for a in ev.args] == ["__cpu", "info"]
    assert ev.fmt == "cpu=%p info=%d"
    assert ev.props == frozenset({"vcpu", "tcg"})


def test_pointer_arguments_split_at_last_star() -> None:
    ev = one('f(void *opaque, const char *name, char* s, const char*t, uint8_t **pp) ""')
    assert [(a.ctype, a.name) for a in ev.args] == [
        ("void *", "opaque"),
        ("const char *", "name"),
        ("char*", "s"),
        ("const char*", "t"),
        ("uint8_t **", "pp"),
    ]
    assert [a.is_string for a in ev.args] == [False, True, True, True, False]
    assert all(a.is_pointer for a in ev.args)


def test_plain_arguments_split_at_last_space() -> None:
    ev = one('f(unsigned long  page, const int line, unsigned int section_type) ""')
    assert [(a.ctype, a.name) for a in ev.args] == [
        ("unsigned long", "page"),
        ("const int", "line"),
        ("unsigned int", "section_type"),
    ]


@pytest.mark.parametrize(
    ("ctype", "signed", "bits"),
    [
        ("int", True, 32),
        ("const int", True, 32),
        ("unsigned", False, 32),
        ("unsigned int", False, 32),
        ("long", True, 64),
        ("unsigned long", False, 64),
        ("long long", True, 64),
        ("int8_t", True, 8),
        ("uint8_t", False, 8),
        ("int16_t", True, 16),
        ("uint16_t", False, 16),
        ("uint32_t", False, 32),
        ("int64_t", True, 64),
        ("uint64_t", False, 64),
        ("bool", False, 8),
        ("size_t", False, 64),
        ("ssize_t", True, 64),
        ("void *", False, 64),
        ("const char *", False, 64),
    ],
)
def test_argument_types(ctype: str, signed: bool, bits: int) -> None:
    arg = ArgDef(ctype, "x")
    assert arg.is_signed is signed
    assert arg.bits == bits


def test_format_macros_between_literals() -> None:
    ev = one(
        "f(uint64_t a, uint32_t b, int8_t c, uintptr_t d, intmax_t e, uint16_t g) "
        '"a=0x%" PRIx64 " b=%" PRIu32 " c=%"PRId8 " d=%" PRIxPTR " e=%" PRIiMAX " g=%"PRIX16'
    )
    assert ev.fmt == "a=0x%llx b=%u c=%hhd d=%tx e=%ji g=%hX"


def test_macro_at_the_end_and_start() -> None:
    assert one('f(uint64_t p) "%" PRIu64').fmt == "%llu"
    assert one('f(uint64_t p) PRIu64 "x"').fmt == "llux"


def test_escape_sequences_in_literals() -> None:
    ev = one(r'f(const char *s, int r) "field \"%s\" failed\tret = %d \\ \101\x42"')
    assert ev.fmt == 'field "%s" failed\tret = %d \\ AB'


def test_second_format_wins() -> None:
    ev = one('f(int a) "trans %d", "real %d"')
    assert ev.fmt == "real %d"
    ev = one('f(uint64_t a) "t %" PRIx64 , "r %" PRIu64')
    assert ev.fmt == "r %llu"


def test_commas_inside_literals_are_not_separators() -> None:
    ev = one('f(int a, int b) "a=%d, b=%d"')
    assert ev.fmt == "a=%d, b=%d"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('f(int a "x"', "malformed"),
        ("just some words", "expected"),
        ('f(int a) "unterminated', "unterminated"),
        ('f(int a) "x" junk', "unexpected text"),
        ('f(int a) "x" PRIx65', "unexpected text"),
        ('f(int) "x"', "not 'type name'"),
        ('f(int a,) "x"', "empty argument"),
        ('f(int a, int a) "x"', "used twice"),
        ('bogus f(int a) "x"', "unknown property"),
        ('f*(int a) "x"', "'*'"),
        ('f(int a) "x", ', "empty format"),
        ('f(int a) "a", "b", "c"', "at most two"),
    ],
)
def test_bad_lines_name_file_and_line(line: str, message: str) -> None:
    text = '# header\ngood(int a) "%d"\n\n' + line + '\nafter(void) ""\n'
    with pytest.raises(TraceEventsError) as info:
        parse_trace_events(text, "user/trace-events")
    err = info.value
    assert err.path == "user/trace-events"
    assert err.line == 4
    assert str(err).startswith("user/trace-events:4: ")
    assert message in str(err)


def test_load_reports_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "trace-events"
    with pytest.raises(TraceEventsError) as info:
        load_trace_events(str(missing))
    assert str(info.value).startswith(str(missing) + ": ")
    assert "cannot read" in str(info.value)

    binary = tmp_path / "trace.simple"
    binary.write_bytes(b"\xff\xff\xff\xff\xff\xff\xff\xff\xb4\x29\xa4\x0a")
    with pytest.raises(TraceEventsError) as info:
        load_trace_events(str(binary))
    assert str(binary) in str(info.value)

    folder = tmp_path / "dir"
    folder.mkdir()
    with pytest.raises(TraceEventsError):
        load_trace_events(str(folder))


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "trace-events"
    path.write_text('# x\nqemu_file_fclose(void) ""\nbad line here\n')
    with pytest.raises(TraceEventsError) as info:
        load_trace_events(str(path))
    assert str(info.value).startswith(f"{path}:3: ")


def test_extended_annotations_and_families() -> None:
    text = (
        '#@ since=7.0 note="first part"\n'
        '#@ note="second part"\n'
        'a(int x) "%d"\n'
        'b(int x) "%d"\n'
        "#@ until=10.0\n"
        "\n"
        'qmp_enter_*(const char *json) "%s"\n'
    )
    a, b, fam = parse_trace_events(text, "cat.events", extended=True)
    assert (a.since, a.until, a.note) == ("7.0", None, "first part second part")
    assert (b.since, b.until, b.note) == (None, None, "")
    assert fam.until == "10.0"
    assert fam.is_family and fam.prefix == "qmp_enter_"
    # Without the extended flag the same text is plain trace-events: annotations are comments.
    with pytest.raises(TraceEventsError, match=r"cat.events:7: .*'\*'"):
        parse_trace_events(text, "cat.events")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("#@ since=1.0\n", 1),
        ('a(void) ""\n#@ frobnicate=1\nb(void) ""\n', 2),
        ('#@ note="unterminated\na(void) ""\n', 1),
    ],
)
def test_extended_annotation_errors(text: str, line: int) -> None:
    with pytest.raises(TraceEventsError) as info:
        parse_trace_events(text, "cat.events", extended=True)
    assert info.value.line == line


def test_signature_round_trip() -> None:
    ev = one(
        "ram_load_loop(const char *rbname, uint64_t addr, int flags, void *host) "
        '"%s: addr: 0x%" PRIx64 " flags: 0x%x host: %p"'
    )
    again = one(ev.signature())
    assert (again.name, again.args, again.fmt) == (ev.name, ev.args, ev.fmt)


@pytest.mark.skipif(not os.path.exists(DEBIAN_72), reason="Debian's QEMU 7.2 data not installed")
def test_parses_a_real_trace_events_all() -> None:
    events = load_trace_events(DEBIAN_72)
    with open(DEBIAN_72) as f:
        lines = f.read().splitlines()
    # Independent count: lines that start like an event definition.
    looks_like_event = [ln for ln in lines if re.match(r"\s*(?:(?:disable|vcpu|tcg)\s+)*\w+\(", ln)]
    assert len(events) == len(looks_like_event) > 4000
    by_name = {e.name: e for e in events}
    mutex = by_name["qemu_mutex_lock"]
    assert [a.name for a in mutex.args] == ["mutex", "file", "line"]
    assert mutex.fmt == "waiting on mutex %p (%s:%d)"
    assert by_name["ram_load_postcopy_loop"].fmt == "chan=%d addr=0x%llx flags=0x%x"
    assert any("vcpu" in e.props for e in events)
