"""A seeded, bounded mutation campaign through every command and the main API functions.

Each case lays out a run folder: slices of the real sample traces of one backend (log of both
QEMU generations, without timestamps, postcopy, COLO, a per-thread directory, simple, ftrace,
trace-cmd, LTTng) with the sidecars recorded next to them. It damages a trace the way
``tests/test_mutation_parsers.py`` does (lines deleted, duplicated, swapped; truncation, flipped
bytes, garbage and invalid UTF-8, 1 MB lines, huge or negative numbers, lines of another format,
broken compression) or with event names replaced, and often a side file too: a hostile
thread-name sidecar, query-migrate.json or run.json (nested 100 000 deep, wrong types at any
level, 5000-digit numbers, NaN, bytes that are not UTF-8, over the size limit, a list instead of
an object, duplicate keys, lone surrogates, ids out of range). Then it runs commands in-process
on it, and the main API functions. Whatever the damage:

- no command exits with 3 or prints a traceback or "internal error";
- every line on stderr is one ``migtrace: ...`` line (errors, warnings, "wrote ...");
- the API raises nothing but InputError / UsageError / TraceEventsError, each one line;
- a load that succeeds counts every line once: lines == events + other lines + lines set
  aside, per input of ``migtrace summary -f json``.

The default run is small (a few commands per case, rotating so that every command runs); the
``slow`` variant runs every command on more cases. ``MIGTRACE_MUTATION_SEED`` and
``MIGTRACE_CLI_MUTATION_ROUNDS`` widen the search by hand.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import re
import shutil
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import tracetool
from tests.conftest import REPO, read_lines, run_cli, sample
from tests.test_mutation_parsers import LINE_MUTATIONS, _break_compressed, _simple_slice, _truncate
from tracetool._model.jsonfile import MAX_BYTES
from tracetool.errors import InputError, TraceEventsError, UsageError

SEED = int(os.environ.get("MIGTRACE_MUTATION_SEED", "20261204"))
ROUNDS = int(os.environ.get("MIGTRACE_CLI_MUTATION_ROUNDS", "3"))
SLOW_ROUNDS = 2
END_LINES = 6000  # lines kept from each end of a sample trace
SIDE_FILES = ("dst-threads.json", "src-threads.json", "query-migrate.json", "run.json", "qemu-version.txt")

# Per source: the sample folder and the trace files (two sides where the run has both).
SOURCES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "log-tid@": (("qemu-7.2", "e-precopy-mutex"), ("dst.trace.xz", "src.trace.xz")),
    "log-iso": (("qemu-threadify", "d-postcopy-preempt"), ("dst.trace.xz", "src.trace.xz")),
    "log-plain": (("qemu-7.2", "g-precopy-plain-notimestamp"), ("dst.trace.xz", "src.trace.xz")),
    "postcopy": (("qemu-7.2", "d-postcopy-preempt"), ("dst.trace.xz",)),
    "colo": (("qemu-7.2-colo", "b-colo-periodic-mutex"), ("dst.trace.xz", "src.trace.xz")),
    "ftrace": (("qemu-threadify-ftrace", "a-precopy-mutex"), ("ftrace.txt.xz",)),
    "trace-cmd": (("qemu-threadify-ftrace", "d-precopy-mutex-trace-cmd"), ("trace-cmd-report.txt.xz",)),
    "lttng": (("qemu-threadify-lttng", "a-precopy-mutex"), ("lttng-babeltrace2.txt.xz",)),
    "per-thread": (("qemu-threadify", "e-precopy-mutex", "per-thread"), ()),
    "simple": (("qemu-threadify", "e-precopy-mutex"), ("dst.simple.xz",)),
}


@functools.cache
def _ends(parts: tuple[str, ...]) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """The first and the last lines of a sample trace (read once per test session): the start
    of a migration and its switchover and end."""
    lines = read_lines(sample(*parts))
    head = tuple(itertools.islice(lines, END_LINES))
    return head, tuple(deque(itertools.chain(head, lines), END_LINES))


def _window(parts: tuple[str, ...], rng: random.Random) -> list[bytes]:
    lines = rng.choice(_ends(parts))
    n = rng.randint(50, 1500)
    start = rng.randrange(0, max(1, len(lines) - n))
    return list(lines[start : start + n])


# ------------------------------------------------------------------------ trace damage


def _identifier_runs(line: bytes) -> list[re.Match[bytes]]:
    return list(re.finditer(rb"[a-z][a-z0-9]*_[a-z0-9_]+", line))


def _unknown_names(lines: list[bytes], rng: random.Random) -> list[bytes]:
    """Event names (identifiers with an underscore) replaced by names no catalog knows."""
    for _ in range(rng.randint(1, max(1, len(lines) // 3))):
        i = rng.randrange(len(lines))
        runs = _identifier_runs(lines[i])
        if runs:
            m = runs[0]
            lines[i] = lines[i][: m.start()] + b"zz_unknown_%d" % rng.randrange(50) + lines[i][m.end() :]
    return lines


def _shuffled_names(lines: list[bytes], rng: random.Random) -> list[bytes]:
    """Event names swapped between lines: known names with the wrong arguments, ends before
    begins, unlocks without locks."""
    names = [m.group(0) for line in lines[:400] for m in _identifier_runs(line)[:1]]
    for _ in range(rng.randint(1, max(1, len(lines) // 4))):
        i = rng.randrange(len(lines))
        runs = _identifier_runs(lines[i])
        if runs and names:
            m = runs[0]
            lines[i] = lines[i][: m.start()] + rng.choice(names) + lines[i][m.end() :]
    return lines


def _cut_block(lines: list[bytes], rng: random.Random) -> list[bytes]:
    """A block of lines missing from the middle (a lost buffer)."""
    i = rng.randrange(len(lines))
    del lines[i : i + rng.randint(1, max(1, len(lines) // 2))]
    return lines or [b""]


TRACE_DAMAGE: dict[str, Callable[[list[bytes], random.Random], list[bytes]]] = {
    **LINE_MUTATIONS,
    "unknown-names": _unknown_names,
    "shuffled-names": _shuffled_names,
    "cut-block": _cut_block,
}
WHOLE_FILE_DAMAGE = ("none", "truncate", "compressed")


def _write_trace(path: Path, lines: list[bytes], how: str, rng: random.Random) -> Path:
    data = b"\n".join(lines) + b"\n"
    if how == "truncate":
        data = _truncate(data, rng)
    elif how == "compressed":
        kind, data = _break_compressed(data, rng)
        path = path.with_name(f"{path.name}.{kind}")
    elif how != "none":
        data = b"\n".join(TRACE_DAMAGE[how](lines, rng)) + b"\n"
    path.write_bytes(data)
    return path


def _simple_trace(folder: Path, how: str, rng: random.Random) -> None:
    data = bytearray(_simple_slice())
    if how == "truncate":
        data = data[: rng.randrange(24, len(data))]
    elif how == "compressed":
        kind, packed = _break_compressed(bytes(data), rng)
        (folder / f"dst.simple.{kind}").write_bytes(packed)
        return
    elif how != "none":
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(24, len(data))] = rng.randrange(256)
    (folder / "dst.simple").write_bytes(bytes(data))


# ------------------------------------------------------------------------ hostile side files


class Raw(str):
    """A JSON token written as it is (NaN, a 5000-digit number, 100 000 brackets)."""


class Pairs(list[tuple[str, Any]]):
    """A JSON object written from its pairs, so that a key may appear twice."""


def _dump(node: Any) -> str:
    if isinstance(node, Raw):
        return str(node)
    if isinstance(node, dict):
        node = Pairs(node.items())
    if isinstance(node, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in node) + "}"
    if isinstance(node, list):
        return "[" + ",".join(_dump(v) for v in node) + "]"
    return json.dumps(node)


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) of a decoded JSON document, top first."""
    out, todo = [], [doc]
    while todo:
        node = todo.pop()
        keys = node.keys() if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else ()
        for k in keys:
            out.append((node, k))
            todo.append(node[k])
    return out


_ODD_VALUES: list[Any] = [[], {}, "", "x", 0, -1, 1.5, None, True, [1, "a"], {"a": None}]
_NUMBERS = [
    "9" * 5000,
    "-" + "9" * 5000,
    "1e999",
    "-1e999",
    str(2**63),
    str(2**64),
    str(-(2**63) - 1),
    str(2**31),
    "1e308",
    "-0",
]
_IDS = ["-5", "99999999999999", "0x10", " 12", "1e3", "", "\u0663", str(2**31), "2147483647"]
_NAMES = ["\ud800", "a\udcff", "\n\x1b[31mred", "x" * 10000, "", "<script>", "mig/dst/main", "\x00"]


def _hostile(doc: Any, how: str, rng: random.Random) -> bytes | None:
    """``doc`` damaged as ``how`` says, as bytes (None: leave the file as it was)."""
    slots = _slots(doc)
    pick = rng.choice(slots) if slots else None
    if how == "wrong-type" and pick:
        pick[0][pick[1]] = rng.choice(_ODD_VALUES)
    elif how == "number" and pick:
        pick[0][pick[1]] = Raw(rng.choice(_NUMBERS))
    elif how == "nan" and pick:
        pick[0][pick[1]] = Raw(rng.choice(["NaN", "Infinity", "-Infinity"]))
    elif how == "deep" and pick:
        n = rng.choice([65, 1000, 100_000])
        pick[0][pick[1]] = Raw(rng.choice(["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n]))
    elif how == "duplicate":
        objects = [d for d in [doc, *(c[k] for c, k in slots)] if isinstance(d, dict) and d]
        if objects:
            obj = rng.choice(objects)
            key = rng.choice(list(obj))
            pairs = Pairs(obj.items())
            pairs.insert(rng.randrange(len(pairs) + 1), (key, rng.choice(_ODD_VALUES)))
            if obj is doc:
                doc = pairs
            else:
                container, k = next((c, k) for c, k in slots if c[k] is obj)
                container[k] = pairs
    elif how == "names":
        strings = [(c, k) for c, k in slots if isinstance(c[k], str)]
        for c, k in rng.sample(strings, min(len(strings), rng.randint(1, 5))):
            c[k] = rng.choice(_NAMES) + c[k]
    elif how == "ids" and isinstance(doc, dict):
        table = doc.get("tid_to_name") or doc.get("threads") or doc
        if isinstance(table, dict) and table:
            key = rng.choice(list(table))
            table[rng.choice(_IDS)] = table.pop(key)
        doc["pid"] = rng.choice([2**31, -1, 2**63, "123", 1.5, True, 0])
    elif how == "top-level":
        doc = rng.choice([[doc], "text", 42, None, [], {}])
    text = _dump(doc).encode("utf-8", "surrogatepass")
    if how == "bad-utf8":
        at = rng.randrange(len(text) + 1)
        text = text[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80abc"]) + text[at:]
    elif how == "truncate":
        text = text[: rng.randrange(len(text) + 1)]
    elif how == "bom":
        text = b"\xef\xbb\xbf" + text
    elif how == "too-big":
        text = text + b" " * (MAX_BYTES + 1 - len(text))
    return text


SIDE_DAMAGE = (
    "none",
    "wrong-type",
    "number",
    "nan",
    "deep",
    "duplicate",
    "names",
    "ids",
    "top-level",
    "bad-utf8",
    "truncate",
    "bom",
    "too-big",
    "other-side",
)


# ------------------------------------------------------------------------ cases


@dataclass
class Case:
    """A damaged run folder and how to hand it to migtrace."""

    name: str
    folder: Path
    explicit: bool  # sidecars as --threads / --query-migrate instead of picked up from the folder
    threads: list[str] = field(default_factory=list)
    query_migrate: str | None = None
    borrow: list[str] = field(default_factory=list)  # --borrow-from

    @property
    def paths(self) -> list[str]:
        """What goes on the command line (the folder; or its trace files)."""
        if not self.explicit:
            return [str(self.folder)]
        side = {p.name for p in self.folder.iterdir()} & set(SIDE_FILES)
        return [str(p) for p in sorted(self.folder.iterdir()) if p.name not in side] or [str(self.folder)]

    @property
    def thread_options(self) -> list[str]:
        """--threads when given explicitly, and --borrow-from."""
        borrow = [a for b in self.borrow for a in ("--borrow-from", b)]
        return [a for t in self.threads for a in ("--threads", t)] + borrow

    @property
    def options(self) -> list[str]:
        """--threads and --query-migrate when given explicitly."""
        qm = ["--query-migrate", self.query_migrate] if self.query_migrate else []
        return [*self.thread_options, *qm]


def make_case(tmp: Path, source: str, trace_how: str, side_how: str, rng: random.Random) -> Case:
    """Lays out one damaged run folder of ``source`` in ``tmp``."""
    parts, files = SOURCES[source]
    # A name that is not UTF-8 (Python holds the byte 0xff as a lone surrogate), a line break.
    folder = tmp / rng.choice(["run", "run", "run\udcff", "run\nx", "r u:n"])
    folder.mkdir()
    origin = Path(sample(*parts))
    borrow: list[str] = []
    if source == "per-thread":
        traces = sorted(origin.glob("dst.*.trace.xz"))
        victim = rng.randrange(len(traces))
        for i, f in enumerate(traces):
            lines = _window((*parts, f.name), rng)
            how = trace_how if i == victim else "none"
            _write_trace(folder / f.name.removesuffix(".xz"), lines, how, rng)
    elif source == "simple":
        _simple_trace(folder, trace_how, rng)
        if rng.random() < 0.5:  # the log of the same run: a twin in the folder, or --borrow-from
            twin = _ends((*parts, "dst.trace.xz"))[0][: rng.randint(100, END_LINES)]
            where = folder / "dst.trace" if rng.random() < 0.5 else tmp / "twin.trace"
            borrow = [str(_write_trace(where, list(twin), rng.choice(["none", "delete", "flip"]), rng))]
    else:
        victim = rng.randrange(len(files))
        for i, name in enumerate(files):
            lines = _window((*parts, name), rng)
            _write_trace(folder / name.removesuffix(".xz"), lines, trace_how if i == victim else "none", rng)
    extra = rng.choice([None] * 6 + ["empty", "bytes", "other"])
    if extra == "empty":
        (folder / "extra.trace").write_bytes(b"")
    elif extra == "bytes":
        (folder / "extra.trace").write_bytes(rng.randbytes(rng.randint(1, 5000)))
    elif extra == "other":
        other = rng.choice([k for k, v in SOURCES.items() if v[1] and k != "simple"])
        other_parts, other_files = SOURCES[other]
        lines = _window((*other_parts, other_files[0]), rng)
        _write_trace(folder / f"other-{other_files[0].removesuffix('.xz')}", lines, "none", rng)
    present = [n for n in SIDE_FILES if (origin / n).exists()]
    for n in present:
        shutil.copy(origin / n, folder / n)
    jsons = [n for n in present if n.endswith(".json")]
    if side_how == "other-side" and {"dst-threads.json", "src-threads.json"} <= set(present):
        (folder / "dst-threads.json").write_bytes((origin / "src-threads.json").read_bytes())
    elif side_how != "none" and jsons:
        target = folder / rng.choice(jsons)
        damaged = _hostile(json.loads(target.read_text("utf-8")), side_how, rng)
        if damaged is not None:
            target.write_bytes(damaged)
    name = f"{source}/{trace_how}/{side_how}" + (f"/extra-{extra}" if extra else "")
    case = Case(name, folder, explicit=rng.random() < 0.4)
    case.borrow = [b for b in borrow if not b.startswith(str(folder))]
    if case.explicit:
        case.threads = [str(folder / n) for n in present if n.endswith("-threads.json")]
        qm = folder / "query-migrate.json"
        case.query_migrate = str(qm) if qm.exists() else None
    return case


# ------------------------------------------------------------------------ commands


@functools.cache
def _rules() -> list[str]:
    """One rule per metric of README's metric table (generated from the metric registry)."""
    text_values = {"outcome": "failed", "colo.failover": "none"}
    rules = []
    for line in (REPO / "README.md").read_text("utf-8").splitlines():
        m = re.match(r"\| `([^`]+)` \| (\w+) \|", line)
        if not m:
            continue
        metric, kind = m.group(1).replace("<name>", "precopy"), m.group(2)
        if metric.startswith("events."):
            metric = metric.replace("precopy", "qemu_mutex_lock")
        rules.append(
            {
                "duration": f"{metric} < 1000s",
                "count": f"{metric} >= 0",
                "number": f"{metric} >= 0",
                "flag": f"{metric} == false",
                "text": f"{metric} != {text_values.get(metric, 'x')}",
                "presence": metric.replace("(precopy)", '("qemu_mutex_lock")') + " exists",
            }[kind]
        )
    assert len(rules) > 40, "README's metric table was not found"
    return rules


def _commands(case: Case, out: Path) -> dict[str, list[str]]:
    p, o, threads = case.paths, case.options, case.thread_options
    both = [a for t in case.threads for a in ("--before-threads", t, "--after-threads", t)]
    cmds = {
        "summary": ["summary", *p, *threads],
        "bql": ["bql", *p, *threads],
        "bql-json": ["bql", "-f", "json", *p, *threads],
        "phases": ["phases", *p, *o],
        "phases-json": ["phases", "-f", "json", *p, *o],
        "preempt": ["preempt", *p, *threads],
        "timeline": ["timeline", *p, *threads],
        "timeline-json": ["timeline", "-f", "json", *p, *threads],
        "downtime": ["downtime", *p, *o],
        "downtime-json": ["downtime", "-f", "json", *p, *o],
        "colo": ["colo", *p, *threads],
        "colo-json": ["colo", "-f", "json", *p, *threads],
        "report": ["report", *p, *o],
        "report-md": ["report", "-f", "md", *p, *o],
        "report-html": ["report", "-f", "html", "-o", str(out / "r.html"), *p, *o],
        "report-json": ["report", "-f", "json", *p, *o],
        "export-perfetto": ["export", "--to", "perfetto", "-o", str(out / "p.json"), *p, *threads],
        "export-parquet": ["export", "--to", "parquet", "-o", str(out / "pq"), *p, *threads],
        "export-csv": ["export", "--to", "csv", "-o", str(out / "csv"), *p, *threads],
        "check": ["check", "-f", "json", *p, *o, *(a for r in _rules() for a in ("--rule", r))],
        "compare": ["compare", *p, "--", *p, *both, "-f", "json"],
    }
    for kind in ("gantt", "bql", "phases", "page-latency", "downtime", "colo"):
        cmds[f"plot-{kind}"] = ["plot", kind, "-o", str(out / f"{kind}.svg"), *p, *threads]
    return cmds


COMMANDS = list(_commands(Case("", Path("."), False), Path(".")))
_ODD_TIMES = ["1e999s", "-5s", "abc", "@99999999999999999999999", "0", "10ms", "@-1", "nan", "1e300"]
_ODD_THREADS = ["main", "0", "-1", "99999999999999999999", "\udcff", "", "*", "[", "load"]
_ODD_INTS = ["0", "-1", "1", "99999999999999999999"]


def odd_options(name: str, rng: random.Random) -> list[str]:
    """Options of ``name`` at or past their limits, or another input format forced."""
    choices: list[list[str]] = [
        ["--input-format", rng.choice(["log", "simple", "ftrace", "lttng", "trace-cmd"])]
    ]
    if name.startswith("bql"):
        choices += [
            ["--top", rng.choice(_ODD_INTS)],
            ["--bql-addr", rng.choice(["0x0", "zz", "0x" + "f" * 40])],
        ]
    if name.startswith("timeline"):
        choices += [["--thread", rng.choice(_ODD_THREADS)], ["--limit", rng.choice(_ODD_INTS)], ["-k", "zz"]]
    if name == "plot-gantt":
        choices += [["--from", rng.choice(_ODD_TIMES)], ["--to", rng.choice(_ODD_TIMES)]]
    if name.startswith(("report", "export", "plot")):  # never a place that can be written
        choices += [["-o", rng.choice(["/dev/null/x.svg", "/dev/null/x/", "/proc/x.html"])]]
    return rng.choice(choices)


def _run_clean(args: list[str]) -> Any:
    r = run_cli(*args)
    shown = f"migtrace {' '.join(args)}\n--- stderr:\n{r.stderr[-3000:]}"
    assert r.returncode in (0, 1, 2), shown
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, shown
    if r.returncode == 2 and r.stderr.startswith("Usage: ") and "\nError: " in r.stderr:
        return r  # an option value out of its range: click's usage message, as for any option
    for line in r.stderr.splitlines():
        assert line.startswith("migtrace: "), shown
    if r.returncode == 2:
        assert r.stderr.count("\n") >= 1, shown
    return r


def _line_identity(summary_json: str) -> None:
    doc = json.loads(summary_json)
    for i in doc["inputs"]:
        assert i["lines"] == i["events"] + i["other_lines"] + sum(i["set_aside"].values()), i


def _one_line(exc: BaseException) -> None:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message, message


def _api(case: Case) -> None:
    """The main API functions: they succeed or raise one of migtrace's one-line errors."""
    from tracetool._analyses import registry
    from tracetool._json import dumps

    try:
        run = tracetool.load_run(
            case.paths, threads=case.threads, query_migrate=case.query_migrate, borrow_from=case.borrow
        )
    except (InputError, UsageError, TraceEventsError) as exc:
        _one_line(exc)
        return
    trace = run.trace
    for i in trace.inputs.itertuples():
        assert i.lines == i.events + i.other_lines + i.set_aside, i.path
    for name, analysis in registry.ANALYSES.items():
        options = {"query_migrate": run.query_migrate} if "query_migrate" in analysis.options else {}
        try:
            dumps(registry.run(trace, name, **options).to_json())
        except (InputError, UsageError) as exc:
            _one_line(exc)
    dumps(tracetool.compare(trace, trace).to_json())
    tracetool.check_trace(trace, _rules()[:12])


def _campaign(tmp_path: Path, index: int, every_command: bool) -> None:
    rng = random.Random(f"{SEED}:cli:{index}")
    source = list(SOURCES)[index % len(SOURCES)]
    damage = ["none", *TRACE_DAMAGE, *WHOLE_FILE_DAMAGE[1:]]
    trace_how = damage[(index // len(SOURCES) + index) % len(damage)]
    side_how = SIDE_DAMAGE[index % len(SIDE_DAMAGE)] if rng.random() < 0.7 else "none"
    case = make_case(tmp_path, source, trace_how, side_how, rng)
    out = case.folder.with_name(case.folder.name + "-out")
    out.mkdir()
    cmds = _commands(case, out)
    summary = _run_clean(["summary", "-f", "json", *case.paths, *case.thread_options])
    if summary.returncode == 0:
        _line_identity(summary.stdout)
    names = COMMANDS if every_command else [COMMANDS[(index * 2 + k) % len(COMMANDS)] for k in range(2)]
    for name in names:
        _run_clean(cmds[name] + (odd_options(name, rng) if rng.random() < 0.3 else []))
    if every_command or index % 3 == 0:
        _api(case)


@pytest.mark.parametrize("index", range(ROUNDS * len(SOURCES)))
def test_damaged_run_never_crashes_a_command(tmp_path: Path, index: int) -> None:
    _campaign(tmp_path, index, every_command=False)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(1000, 1000 + SLOW_ROUNDS * len(SOURCES)))
def test_damaged_run_never_crashes_any_command(tmp_path: Path, index: int) -> None:
    _campaign(tmp_path, index, every_command=True)


def test_notimestamp_log_timeline_works_undamaged() -> None:
    """A log recorded without ``-msg timestamp=on`` has spans in order but no times."""
    trace = sample("qemu-7.2", "g-precopy-plain-notimestamp", "dst.trace.xz")
    r = _run_clean(["timeline", trace])
    assert r.returncode == 0
    plain_names = {line.split()[0] for line in read_lines(trace) if line.strip()}
    assert b"qemu_loadvm_state_section_startfull" in plain_names
    assert "START" in r.stdout and "the trace has no timestamps" in r.stdout


def test_side_file_limit_is_checked_before_reading(tmp_path: Path) -> None:
    """A 100 MB sidecar is refused by its size, in one line."""
    big = tmp_path / "threads.json"
    with open(big, "wb") as f:
        f.write(b'{"tid_to_name": {"1": "a"}}')
        f.truncate(100 << 20)
    trace = sample("qemu-7.2", "a-precopy-plain", "dst.trace.xz")
    r = _run_clean(["summary", trace, "--threads", str(big)])
    assert r.returncode == 2 and "larger than" in r.stderr


def test_simple_record_with_pid_beyond_int32(tmp_path: Path) -> None:
    """Out-of-range pids of simple records are unknown ids, not a crash in the thread table."""
    data = bytearray(_simple_slice())
    p, changed = 24, 0
    while p + 32 <= len(data):
        rtype = int.from_bytes(data[p : p + 8], "little")
        if rtype == 1:
            if changed < 50:
                data[p + 28 : p + 32] = (0x80000000).to_bytes(4, "little")
                changed += 1
            p += 8 + int.from_bytes(data[p + 24 : p + 28], "little")
        elif rtype == 0:
            p += 20 + int.from_bytes(data[p + 16 : p + 20], "little")
        else:
            p += 24
    path = tmp_path / "dst.simple"
    path.write_bytes(bytes(data))
    r = _run_clean(["summary", "-f", "json", str(path)])
    assert r.returncode == 0
    _line_identity(r.stdout)
    doc = json.loads(r.stdout)
    unknown = {p["label"] for p in doc["processes"] if p["pid"] is None}
    assert sum(t["events"] for t in doc["threads"] if t["process"] in unknown) == changed
    assert any(f"{changed} record(s) with a pid beyond" in w for w in doc["inputs"][0]["warnings"])


_RULE = '[[rule]]\nname = "r"\nmetric = "events.count"\nop = "<"\nvalue = {}\n'


@pytest.mark.parametrize(
    "rules,expected",
    [
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        (_RULE.format("9" * 5000), "5000 digits"),
        (_RULE.format("9" * 400), "out of range"),
        (_RULE.format("nan"), "out of range"),
        (_RULE.format("-inf"), "out of range"),
    ],
    ids=["deep", "5000-digits", "400-digits", "nan", "inf"],
)
def test_hostile_rules_file_is_one_line_error(tmp_path: Path, rules: str, expected: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(rules)
    r = _run_clean(["check", sample("qemu-7.2", "a-precopy-plain", "src.trace.xz"), "--rules", str(path)])
    assert r.returncode == 2 and expected in r.stderr and str(path) in r.stderr


@pytest.mark.parametrize("number", ["1e999", "-1e999"])
def test_rule_expression_number_out_of_range(number: str) -> None:
    trace = sample("qemu-7.2", "a-precopy-plain", "src.trace.xz")
    r = _run_clean(["check", trace, "--rule", f"events.count < {number}"])
    assert r.returncode == 2 and "out of range" in r.stderr


def test_garbage_on_stdin_is_named_as_stdin() -> None:
    r = run_cli("summary", "-", stdin=random.Random(SEED).randbytes(50_000).replace(b"\n", b" "))
    assert r.returncode == 2 and r.stderr.startswith("migtrace: -: not a QEMU trace")


@pytest.mark.parametrize(
    "args",
    [
        ["plot", "gantt", "-o", "/dev/null/g.svg"],
        ["plot", "gantt", "-o", "{out}/g.svg", "--from", "1e999s"],
        ["plot", "gantt", "-o", "{out}/g.svg", "--to", "@99999999999999999999999"],
        ["export", "--to", "perfetto", "-o", "/dev/null/p.json"],
        ["export", "--to", "parquet", "-o", "/dev/null/x"],
        ["export", "--to", "csv", "-o", "/dev/null/x/"],
        ["report", "-f", "html", "-o", "/dev/null/r.html"],
        ["bql", "--bql-addr", "0x" + "f" * 40],
    ],
    ids=[
        "plot-under-file",
        "from-1e999s",
        "to-beyond-int64",
        "perfetto",
        "parquet",
        "csv",
        "html",
        "bql-addr",
    ],
)
def test_output_that_cannot_be_written_or_option_out_of_range(tmp_path: Path, args: list[str]) -> None:
    trace = sample("qemu-7.2", "a-precopy-plain", "src.trace.xz")
    r = _run_clean([a.format(out=tmp_path) for a in args] + [trace])
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())


_HOSTILE_FILES = ("src-threads.json", "dst-threads.json", "query-migrate.json", "run.json")


@pytest.mark.parametrize("target", _HOSTILE_FILES)
@pytest.mark.parametrize("how", [h for h in SIDE_DAMAGE if h not in ("none", "too-big", "other-side")])
def test_every_hostile_side_file_in_a_report(tmp_path: Path, target: str, how: str) -> None:
    """Each kind of damage, in each side file of a real run folder, through the report (which
    reads the sidecars, query-migrate.json and run.json and runs every analysis)."""
    origin = Path(sample("qemu-7.2", "a-precopy-plain"))
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("src.trace.xz", *_HOSTILE_FILES, "qemu-version.txt"):
        shutil.copy(origin / name, folder / name)
    rng = random.Random(f"{SEED}:{target}:{how}")
    damaged = _hostile(json.loads((origin / target).read_text("utf-8")), how, rng)
    assert damaged is not None
    (folder / target).write_bytes(damaged)
    r = _run_clean(["report", "-f", "md", str(folder)])
    if r.returncode == 2:
        assert r.stderr.count("\n") == 1 and target in r.stderr


def test_thread_maps_built_in_code_meet_the_file_limits() -> None:
    """``tracetool.load(threads=[ThreadMap(...)])`` holds the maps to the limits of a sidecar
    file: a lone surrogate in a name is printed as U+FFFD, ids out of range are refused."""
    from tracetool._model.sidecar import ThreadMap

    trace = sample("qemu-7.2", "a-precopy-plain", "src.trace.xz")
    tid = next(int(line.split(b"@")[0]) for line in read_lines(trace) if b"@" in line)
    named = tracetool.load(trace, threads=[ThreadMap("m", {tid: "a\ud800"})], force=True)
    assert "a\ufffd" in named.threads["name"].tolist()
    for bad in (
        ThreadMap("m", {tid: "a"}, pid=2**70),
        ThreadMap("m", {2**70: "a"}),
        ThreadMap("m", {tid: "a"}, main_tid=-5),
        ThreadMap("m", {tid: 5}),  # type: ignore[dict-item]
        ThreadMap("m", {tid: "a"}, first_seen_s=float("inf"), last_seen_s=1.0),
    ):
        with pytest.raises(UsageError) as info:
            tracetool.load(trace, threads=[bad], force=True)
        _one_line(info.value)
