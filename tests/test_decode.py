"""Typed decoding of printed argument text, including the quirks of real QEMU output."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tracetool._events.decode import TextDecoder, decoder_for, match_format
from tracetool._events.eventdefs import EventDef, parse_trace_events
from tracetool._events.printf_format import split_format


def ev(line: str) -> EventDef:
    [event] = parse_trace_events(line + "\n")
    return event


def decode_one(line: str, text: str) -> dict[str, object] | None:
    """Decodes one text through the vectorised path; None when it does not match."""
    frame, matched = decoder_for(ev(line)).decode([text])
    if not matched[0]:
        assert frame.iloc[0].isna().all()
        return None
    return {str(k): (None if pd.isna(v) else v) for k, v in frame.iloc[0].items()}


MUTEX = 'qemu_mutex_lock(void *mutex, const char *file, const int line) "waiting on mutex %p (%s:%d)"'
STARTFULL = (
    "qemu_loadvm_state_section_startfull(uint32_t section_id, const char *idstr, "
    'uint32_t instance_id, uint32_t version_id) "%u(%s) %u %u"'
)
QMP_EXIT = 'qmp_exit_query_migrate(const char *result, bool succeeded) "%s %d"'


def test_fields_and_dtypes() -> None:
    dec = TextDecoder(ev(MUTEX))
    assert dec.fields == [("mutex", "ptr"), ("file", "str"), ("line", "int")]
    frame, matched = dec.decode(["waiting on mutex 0x55861b3959e0 (../../softmmu/cpus.c:511)"])
    assert matched.tolist() == [True]
    assert str(frame["mutex"].dtype) == "UInt64"
    assert frame["file"].dtype == pd.StringDtype("pyarrow")
    assert str(frame["line"].dtype) == "Int64"
    assert frame["mutex"][0] == 0x55861B3959E0
    assert frame["file"][0] == "../../softmmu/cpus.c"
    assert frame["line"][0] == 511


def test_float_and_char_dtypes() -> None:
    frame, matched = decoder_for(ev('f(double a, char c) "a=%f c=%c"')).decode(["a=1.500000 c=x"])
    assert matched.all()
    assert str(frame["a"].dtype) == "Float64"
    assert frame["a"][0] == 1.5
    assert frame["c"].dtype == pd.StringDtype("pyarrow")
    assert frame["c"][0] == "x"


def test_strings_with_spaces() -> None:
    # Real device names: "pit channel" (vmstate_load_state, vmstate_save_state_loop).
    assert decode_one('vmstate_load_state(const char *name, int version_id) "%s v%d"', "pit channel v2") == {
        "name": "pit channel",
        "version_id": 2,
    }
    assert decode_one(
        'vmstate_save_state_loop(const char *name, const char *field, int n) "%s/%s[%d]"',
        "pit channel/count[1]",
    ) == {"name": "pit channel", "field": "count", "n": 1}


def test_json_payloads() -> None:
    result = '{"status": "active", "ram": {"total": 1074069504, "skipped": 0}, "x": "a 1"}'
    assert decode_one(QMP_EXIT, result + " 1") == {"result": result, "succeeded": 1}
    assert decode_one(QMP_EXIT, "{} 0") == {"result": "{}", "succeeded": 0}
    uri = '{"uri": "tcp:127.0.0.1:59005"}'
    assert decode_one('qmp_enter_migrate(const char *json) "%s"', uri) == {"json": uri}


def test_null_string_and_nil_pointer() -> None:
    line = (
        'migrate_handle_rp_req_pages(const char *rbname, size_t start, size_t len) "in %s at 0x%zx len 0x%zx"'
    )
    assert decode_one(line, "in (null) at 0x472d000 len 0x1000") == {
        "rbname": None,
        "start": 0x472D000,
        "len": 0x1000,
    }
    assert decode_one(MUTEX, "waiting on mutex (nil) (a.c:1)") == {"mutex": 0, "file": "a.c", "line": 1}


def test_hex_with_and_without_literal_prefix() -> None:
    line = 'ram_discard_range(const char *rbname, uint64_t start, size_t len) "%s: start: %" PRIx64 " %zx"'
    assert decode_one(line, "pc.ram: start: 0 40000000") == {
        "rbname": "pc.ram",
        "start": 0,
        "len": 0x40000000,
    }
    line = (
        "ram_load_postcopy_loop(int channel, uint64_t addr, int flags) "
        '"chan=%d addr=0x%" PRIx64 " flags=0x%x"'
    )
    assert decode_one(line, "chan=1 addr=0x7f4d17e01000 flags=0x22") == {
        "channel": 1,
        "addr": 0x7F4D17E01000,
        "flags": 0x22,
    }
    # The literal 0x is part of the format, so a text without it does not match.
    assert decode_one(line, "chan=1 addr=7f4d17e01000 flags=0x22") is None


def test_alternate_form_hex() -> None:
    line = 'f(unsigned a) "v=%#x"'
    assert decode_one(line, "v=0x1f") == {"a": 0x1F}
    assert decode_one(line, "v=0") == {"a": 0}


def test_upper_case_hex() -> None:
    assert decode_one('f(unsigned a) "v=%X"', "v=DEADBEEF") == {"a": 0xDEADBEEF}
    # Text printed with upper-case digits (LTTng style) also reads with a %x format.
    assert decode_one('f(void *p) "p=%p"', "p=0x7FE23BE00000") == {"p": 0x7FE23BE00000}
    assert decode_one('f(uint64_t a) "a=0x%" PRIx64', "a=0xABCDEF0123456789") == {"a": 0xABCDEF0123456789}


def test_qemu_ud_typo() -> None:
    line = 'loadvm_postcopy_ram_handle_discard_header(const char *ramid, uint16_t len) "%s: %ud"'
    assert decode_one(line, "pc.ram: 16d") == {"ramid": "pc.ram", "len": 16}
    assert decode_one(line, "0000:00:02.0/vga.vram: 1d") == {"ramid": "0000:00:02.0/vga.vram", "len": 1}
    assert decode_one(line, "pc.ram: 16") is None


def test_signed_and_unsigned_ranges() -> None:
    line = 'f(int a, unsigned b) "a=%d b=%u"'
    assert decode_one(line, "a=-22 b=4294967295") == {"a": -22, "b": 4294967295}
    assert decode_one(line, "a=1 b=-1") is None
    line = 'f(uint64_t u, int64_t s) "u=%" PRIu64 " s=%" PRId64'
    assert decode_one(line, f"u={2**64 - 1} s={-(2**63)}") == {"u": 2**64 - 1, "s": -(2**63)}
    assert decode_one(line, f"u={2**63 + 5} s={2**63 - 1}") == {"u": 2**63 + 5, "s": 2**63 - 1}
    # Out of range for the column type: not a text this format can print.
    assert decode_one(line, f"u={2**64} s=0") is None
    assert decode_one(line, f"u=0 s={2**63}") is None
    hexline = 'f(uint64_t h) "h=%" PRIx64'
    assert decode_one(hexline, "h=ffffffffffffffff") == {"h": 2**64 - 1}
    assert decode_one(hexline, "h=0000000000000000ff") == {"h": 255}
    assert decode_one(hexline, "h=1ffffffffffffffff") is None


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("%-8s|", "abc     |", {"a": "abc"}),
        ("%8s|", "     abc|", {"a": "abc"}),
        ("[%5d]", "[   42]", {"a": 42}),
        ("[%-5d]", "[42   ]", {"a": 42}),
        ("[%05d]", "[-0042]", {"a": -42}),
        ("%+d", "+7", {"a": 7}),
        ("%lu", "123", {"a": 123}),
        ("%zu", "0", {"a": 0}),
        ("%zx", "1000", {"a": 0x1000}),
        ("%ld", "-5", {"a": -5}),
        ("%hhu", "255", {"a": 255}),
        ("%o", "777", {"a": 0o777}),
        ("%i%%", "50%", {"a": 50}),
        ("%.3s!", "abc!", {"a": "abc"}),
        ("%c%c", "xy", {"a": "x", "b": "y"}),
        ("%g", "1e+20", {"a": 1e20}),
        ("%e", "-1.250000e-03", {"a": -0.00125}),
        ("%.2f", "3.14", {"a": 3.14}),
        ("%f", "-inf", {"a": float("-inf")}),
        ("%*d|", "   9|", {"b": 9}),
        ("%.*s|", "ab|", {"b": "ab"}),
    ],
)
def test_printf_conversions(fmt: str, text: str, expected: dict[str, object]) -> None:
    names = ["a", "b"]
    assert match_format(fmt, text, names) == expected
    line = f'f(int a, int b) "{fmt}"'
    got = decode_one(line, text)
    assert got == expected


def test_literal_percent_and_invalid_percent() -> None:
    parts = split_format("100%% done %y %d")
    assert parts[0] == "100% done %y "
    assert match_format("100%% done %d", "100% done 3", ["n"]) == {"n": 3}


def test_trailing_spaces_of_the_format_are_optional() -> None:
    line = 'f(int a) "a=%d "'
    assert decode_one(line, "a=1 ") == {"a": 1}
    assert decode_one(line, "a=1") == {"a": 1}


def test_event_without_arguments() -> None:
    dec = decoder_for(ev('migration_socket_incoming_accepted(void) ""'))
    frame, matched = dec.decode(["", "unexpected"])
    assert matched.tolist() == [True, False]
    assert frame.shape == (2, 0)


def test_unmatched_rows_are_all_na() -> None:
    frame, matched = decoder_for(ev(STARTFULL)).decode(["2(ram) 0 4", "garbage", None, "4(cpu_common) 0 1"])
    assert matched.tolist() == [True, False, False, True]
    assert frame.iloc[1].isna().all()
    assert frame.iloc[2].isna().all()
    assert frame["idstr"].tolist()[3] == "cpu_common"


def test_input_containers() -> None:
    dec = decoder_for(ev(STARTFULL))
    texts = ["2(ram) 0 4", "0(timer) 0 2"]
    expected = [2, 0]
    for given in (
        texts,
        pa.array(texts),
        pa.array(texts, pa.large_string()),
        pa.chunked_array([texts[:1], texts[1:]]),
        pd.Series(texts),
    ):
        frame, matched = dec.decode(given)
        assert matched.all()
        assert frame["section_id"].tolist() == expected
    frame, matched = dec.decode([])
    assert len(frame) == 0 and list(frame.columns) == ["section_id", "idstr", "instance_id", "version_id"]


def test_decoder_cache() -> None:
    assert decoder_for(ev(MUTEX)) is decoder_for(ev(MUTEX))


def test_many_generated_texts_round_trip() -> None:
    """Texts printed from known values (Python's % formatting) decode back to those values."""
    rng = random.Random(7)
    line = (
        "ram_load_loop(const char *rbname, uint64_t addr, int flags, void *host) "
        '"%s: addr: 0x%" PRIx64 " flags: 0x%x host: %p"'
    )
    names = ["pc.ram", "pit channel", "0000:00:02.0/vga.vram", "/rom@etc/acpi/tables"]
    rows = []
    for _ in range(20000):
        rb = rng.choice(names)
        addr = rng.getrandbits(rng.choice([12, 40, 64]))
        flags = rng.getrandbits(8)
        host = rng.getrandbits(47)
        rows.append((rb, addr, flags, host))
    texts = [
        "%s: addr: 0x%x flags: 0x%x host: %s" % (rb, a, f, hex(h) if h else "(nil)")  # noqa: UP031
        for rb, a, f, h in rows
    ]
    frame, matched = decoder_for(ev(line)).decode(pa.array(texts))
    assert matched.all()
    assert frame["rbname"].tolist() == [r[0] for r in rows]
    assert np.array_equal(
        frame["addr"].to_numpy(dtype=np.uint64), np.array([r[1] for r in rows], dtype=np.uint64)
    )
    assert frame["flags"].tolist() == [r[2] for r in rows]
    assert frame["host"].tolist() == [r[3] for r in rows]


def test_pattern_is_anchored() -> None:
    assert decode_one(STARTFULL, "2(ram) 0 4 extra") is None
    assert decode_one(STARTFULL, "x2(ram) 0 4") is None


@pytest.mark.parametrize(
    ("line", "text", "expected"),
    [
        # A value that contains the literal after it: the split is the greedy one.
        (
            'vmstate_save_state_loop(const char *name, const char *field, int n) "%s/%s[%d]"',
            "cpu/poll_control_msr/msr[1]",
            {"name": "cpu/poll_control_msr", "field": "msr", "n": 1},
        ),
        (
            'vmstate_subsection_load_bad(const char *parent, const char *sub, const char *sub2) "%s: %s/%s"',
            "ymmh_reg: cpu/poll_control_msr/(prefix)",
            {"parent": "ymmh_reg", "sub": "cpu/poll_control_msr", "sub2": "(prefix)"},
        ),
        (
            'vmstate_load(const char *idstr, const char *vmsd_name) "%s, %s"',
            "a, b, c",
            {"idstr": "a, b", "vmsd_name": "c"},
        ),
        (
            'f(const char *a, uint64_t x) "%s: addr: 0x%" PRIx64',
            "pc.ram: addr: 0x1: addr: 0x2",
            {"a": "pc.ram: addr: 0x1", "x": 2},
        ),
        # Literal that overlaps itself ("aa"): always decoded with the greedy pattern.
        ('f(const char *a, int x) "%saa%d"', "xaaa5", {"a": "xa", "x": 5}),
    ],
)
def test_ambiguous_splits_follow_greedy_printf_reading(
    line: str, text: str, expected: dict[str, object]
) -> None:
    frame, matched = decoder_for(ev(line)).decode([text])
    assert matched.all()
    assert {k: frame[k][0] for k in frame.columns} == expected
    assert match_format(ev(line).fmt, text, [a.name for a in ev(line).args]) == expected


def test_mixed_ambiguous_and_plain_texts_keep_their_rows() -> None:
    dec = decoder_for(ev('vmstate_save_state_loop(const char *name, const char *field, int n) "%s/%s[%d]"'))
    frame, matched = dec.decode(
        ["timer/cpu_ticks_offset[1]", "cpu/poll_control_msr/msr[3]", "bad", "pit channel/count[2]"]
    )
    assert matched.tolist() == [True, True, False, True]
    assert frame["name"].tolist() == ["timer", "cpu/poll_control_msr", pd.NA, "pit channel"]
    assert frame["field"].tolist() == ["cpu_ticks_offset", "msr", pd.NA, "count"]
    assert frame["n"].tolist() == [1, 3, pd.NA, 2]
