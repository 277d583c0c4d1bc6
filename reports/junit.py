"""JUnit XML for CI systems: one testcase per rule, one testsuite per rules file.

The layout follows the JUnit XML that Jenkins, GitLab and GitHub test reporters read
(``testsuites/testsuite/testcase`` with ``failure`` and ``skipped``). Files are written to a
temporary file next to the target and renamed (:mod:`reports.atomic`), so a reader never sees
half a report.
"""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from reports.atomic import write_bytes
from tracetool._check.evaluate import CheckReport, RuleResult
from tracetool.errors import UsageError

SUITES_NAME = "migtrace check"


def _seconds(x: float) -> str:
    return f"{x:.6f}"


def junit_element(report: CheckReport, *, timestamp: datetime | None = None) -> ET.Element:
    """The JUnit document of a check report (its ``testsuites`` root element)."""
    stamp = (timestamp or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S")
    groups: dict[str, list[RuleResult]] = {}
    for r in report.results:
        groups.setdefault(r.rule.group, []).append(r)
    counts = report.counts()
    root = ET.Element(
        "testsuites",
        {
            "name": SUITES_NAME,
            "tests": str(counts["total"]),
            "failures": str(counts["failed"]),
            "errors": "0",
            "skipped": str(counts["skipped"]),
            "time": _seconds(report.seconds),
        },
    )
    host = socket.gethostname() or "localhost"
    for group, results in groups.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": group,
                "tests": str(len(results)),
                "failures": str(sum(r.failed for r in results)),
                "errors": "0",
                "skipped": str(sum(r.skipped for r in results)),
                "time": _seconds(sum(r.seconds for r in results)),
                "timestamp": stamp,
                "hostname": host,
            },
        )
        props = ET.SubElement(suite, "properties")
        origins = dict.fromkeys(r.rule.origin for r in results)
        for origin in origins:
            ET.SubElement(props, "property", {"name": "rules", "value": origin})
        for path in report.inputs:
            ET.SubElement(props, "property", {"name": "trace", "value": path})
        for r in results:
            suite.append(_testcase(r))
    ET.indent(root, space="  ")
    return root


def _testcase(r: RuleResult) -> ET.Element:
    attrs = {"classname": r.rule.group, "name": r.rule.name, "time": _seconds(r.seconds)}
    if r.rule.line is not None:
        attrs["file"] = r.rule.origin
        attrs["line"] = str(r.rule.line)
    case = ET.Element("testcase", attrs)
    if r.failed:
        kind = "not-measurable" if r.observed is None else "threshold"
        failure = ET.SubElement(case, "failure", {"message": r.summary(), "type": kind})
        failure.text = r.explain()
    elif r.skipped:
        ET.SubElement(case, "skipped", {"message": f"not measurable: {r.reason}"})
    else:
        out = ET.SubElement(case, "system-out")
        out.text = r.summary()
    return case


def junit_xml(report: CheckReport, *, timestamp: datetime | None = None) -> bytes:
    """The JUnit document as UTF-8 bytes with an XML declaration."""
    root = junit_element(report, timestamp=timestamp)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: CheckReport, path: str | os.PathLike[str]) -> None:
    """Writes the JUnit file atomically (temporary file in the same folder, then rename).

    Raises :class:`UsageError` when the file cannot be written.
    """
    try:
        write_bytes(path, junit_xml(report))
    except UsageError as exc:
        raise UsageError(f"--junit {exc}") from None
    except OSError as exc:
        raise UsageError(f"--junit {path}: cannot write it: {exc.strerror}") from None
