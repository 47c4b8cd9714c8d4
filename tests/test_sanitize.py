"""The sanitizer: no host text reaches a terminal, table, CSV, HTML or file with a
control, bidi or non-UTF-8 character in it (issue 11, point 1)."""

from __future__ import annotations

import csv
import io
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetops.cli.output import format_host, format_recap
from fleetops.jobs.disk import report as dr
from fleetops.results import HostResult, RunResult
from fleetops.sanitize import clean, csv_cell, decode, escape_char, lines, safe_str

UNSAFE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")
ALL_UNSAFE = [chr(c) for c in range(sys.maxunicode + 1)
              if unicodedata.category(chr(c)) in UNSAFE_CATEGORIES]


def visible(text: str) -> bool:
    """No character a terminal would act on or hide."""
    return all(unicodedata.category(c) not in UNSAFE_CATEGORIES for c in text)


def test_every_c0_del_c1_is_escaped_as_hex_or_named():
    for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]:
        out = clean(chr(code))
        expected = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}.get(code, f"\\x{code:02x}")
        assert out == expected, hex(code)


def test_every_unicode_control_format_separator_and_surrogate_is_escaped():
    """Checked against this Python's own Unicode database, not our list."""
    for char in ALL_UNSAFE:
        out = clean(f"a{char}b")
        assert out.startswith("a\\") and out.endswith("b") and visible(out), hex(ord(char))


def test_bidi_overrides_and_isolates_are_escaped():
    for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C):
        assert clean(chr(code)) == f"\\u{code:04x}"
    assert clean("\U000e0041") == "\\U000e0041"  # tag character
    assert clean("\u3164") == "\\u3164"  # Hangul filler: looks blank


def test_printable_text_is_returned_unchanged_and_fast_path_is_identity():
    text = "Filesystem 1024-blocks Used Available Capacity Mounted on /srv/données 80% ✓"
    assert clean(text) is text
    assert clean("back\\slash") == "back\\slash"


def test_non_utf8_bytes_are_carried_as_hex_losslessly():
    raw = b"/mnt/caf\xe9\xff\x1b[2J"
    text = decode(raw)
    assert text.encode("utf-8", "surrogateescape") == raw  # lossless until printed
    assert clean(text) == "/mnt/caf\\xe9\\xff\\x1b[2J"
    assert safe_str(text) == "/mnt/caf\\xe9\\xff\x1b[2J"  # encodable, nothing else touched
    assert safe_str("plain") == "plain"


def test_lines_split_on_newline_only_and_keep_tabs():
    assert lines("a\tb\r\nc\rOK\n\x1b]52;c;SGVsbG8=\x07\n") == [
        "a\tb", "c\\rOK", "\\x1b]52;c;SGVsbG8=\\x07"]
    assert lines("x\u2028y\x0cz") == ["x\\u2028y\\x0cz"]
    assert lines("") == [] and lines("\n") == [""]


def test_escape_char_forms():
    assert escape_char("\x1b") == "\\x1b"
    assert escape_char("\udcff") == "\\xff"
    assert escape_char("\ud800") == "\\ud800"


def test_csv_cells_are_cleaned_and_formulas_neutralised():
    assert csv_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    for lead in "+-@":
        assert csv_cell(lead + "cmd") == "'" + lead + "cmd"
    assert csv_cell("\tx") == "\\tx" and csv_cell("a\nb") == "a\\nb"
    assert csv_cell(42) == 42 and csv_cell(None) is None


HOSTILE = ("\x1b]0;pwned\x07\x1b[2J\x1b[H\rweb02 | OK\n"
           "\x1b]52;c;cm0gLXJmIH4=\x07\u202egnp.exe\udcff")


def test_format_host_keeps_every_line_prefixed_and_escaped():
    result = HostResult("web01", "failed", 1, HOSTILE, HOSTILE, reason=HOSTILE)
    text = format_host(result)
    assert visible(text.replace("\n", ""))
    for line in text.splitlines():
        assert line.startswith("web01 | ")
    assert text.count("\n") == 1 + 2 + 2  # head, two stdout lines, two stderr lines
    assert "\\x1b]52;c;" in text and "\\u202e" in text and "\\xff" in text


def test_recap_and_truncation_note_are_escaped():
    run = RunResult()
    run.add(HostResult("evil\x1b[31m", "ok", extra={"truncated": ["stdout"]}))
    text = format_recap(run, retry_file="r\nx")
    assert visible(text.replace("\n", "")) and "evil\\x1b[31m" in text
    assert "output cut at --max-output" in text and "--limit @r\\nx" in text


def _report(mount: str, device: str, reason: str):
    mounts = [{"mountpoint": mount, "device": device, "fstype": "ext4\x1b[8m",
               "size_bytes": 100, "used_bytes": 95, "avail_bytes": 5, "use_pct": 95,
               "inodes_pct": 1, "level": "crit", "over": ["space_crit"], "error": None}]
    return dr.build_report({"h1": ("ok", None, {"mounts": mounts}),
                            "h2\u202e": ("failed", reason, {})}, 80, 90)


def test_disk_report_table_row_stays_one_row_and_html_csv_text_are_clean():
    rep = _report("/srv/a\nCRIT  fake  /  100%", "/dev/\x1b[2Jsda", "SSH-2.0-\x1b]0;t\x07\udcfe")
    table = dr.render_table(rep)
    assert visible(table.replace("\n", ""))
    assert sum(line.startswith("CRIT") for line in table.splitlines()) == 1
    assert not any(line.lstrip().startswith("CRIT  fake") for line in table.splitlines())
    assert "/srv/a\\nCRIT" in table and "\\xfe" in table
    html = dr.render_html(rep)
    assert visible(html.replace("\n", "")) and "\\x1b]0;t\\x07" in html
    html.encode("utf-8")  # strict: no surrogate escapes left
    text = dr.render_text(rep)
    text.encode("utf-8")
    rows = list(csv.reader(io.StringIO(dr.render_csv(rep))))
    assert len(rows) == 3 and all(visible("".join(r)) for r in rows)
    dr.render_csv(rep).encode("utf-8")


def test_disk_report_keeps_exact_text_in_json():
    rep = _report("/srv/\x1bx", "d", "r")
    doc = dr.report_json_hosts(rep)
    assert doc["h1"]["mounts"][0]["mountpoint"] == "/srv/\x1bx"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=st.characters(codec=None, categories=None), max_size=60))
def test_clean_is_visible_one_line_and_injective_on_unsafe_chars(text):
    out = clean(text)
    assert visible(out) and "\n" not in out
    out.encode("utf-8")  # never a lone surrogate
    if visible(text):
        assert out == text


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=80))
def test_any_bytes_print_and_write_without_error(raw):
    text = decode(raw)
    for line in lines(text):
        assert visible(line.replace("\t", ""))
        line.encode("utf-8")
    assert text.encode("utf-8", "surrogateescape") == raw


def test_fast_path_cost_is_small():
    """The hot path (bench.adhoc prints 100 df outputs): a clean text costs one search."""
    import time

    text = "Filesystem     1024-blocks    Used Available Capacity Mounted on\n" * 10
    started = time.perf_counter()
    for _ in range(10000):
        lines(text)
    per_host = (time.perf_counter() - started) / 10000
    assert per_host < 200e-6, per_host  # generous: ~10-20 us here


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x9b", "\u2028", "\ufeff"])
def test_single_chars_never_survive(char):
    assert char not in clean(char * 3)
