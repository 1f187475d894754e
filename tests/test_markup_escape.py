"""Client-sent text in Markdown shows literally (issue 18): the helper with hand-written expected strings, then the
ingestion asset's metadata on a landing file with a hostile name and a hostile rejection reason."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from ingestion.markup import ELLIPSIS, Markdown, md_code, md_escape, md_list, md_table, plain_text, truncate
from orchestration.defs.ingestion.assets import landing_files
from orchestration.defs.resources import WarehouseResource
from tests.conftest import event, write_lines

HOSTILE_FILE = "a|b](javascript:alert(1)).jsonl"
HOSTILE_VARIANT = "**evil**<img src=x onerror=alert(1)>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words 42", "plain words 42"),
        (HOSTILE_FILE, r"a\|b\]\(javascript\:alert\(1\)\)\.jsonl"),
        (HOSTILE_VARIANT, r"\*\*evil\*\*\<img src=x onerror=alert\(1\)\>"),
        ("reason | with\nnew\r\nlines", r"reason \| with\\nnew\\r\\nlines"),
        ("# h1", r"\# h1"),
        ("- item", r"\- item"),
        ("+ item", r"\+ item"),
        ("1. item", r"1\. item"),
        ("> quote", r"\> quote"),
        ("`code`", r"\`code\`"),
        ("_em_ ~~del~~", r"\_em\_ \~\~del\~\~"),
        ("![img](x)", r"\!\[img\]\(x\)"),
        ("{braces}", r"\{braces\}"),
        ("back\\slash", r"back\\slash"),
        ("$x^2$ :red[hi] :material/home:", r"\$x^2\$ \:red\[hi\] \:material/home\:"),
        ("&lt;b&gt;", r"\&lt;b\&gt;"),
        ("https://evil.example", r"https\://evil\.example"),
        ("tab\there\x00nul", r"tab\\there\\x00nul"),
        ("rtl\u202eoverride\u2028line", r"rtl\\u202eoverride\\u2028line"),
        (None, ""),
        (3.5, r"3\.5"),
    ],
)
def test_md_escape_writes_every_special_as_an_escape(text, expected):
    assert md_escape(text) == expected


def test_long_text_is_cut_with_an_ellipsis_before_escaping():
    assert truncate("abcdef", 4) == "abc" + ELLIPSIS
    assert truncate("abcd", 4) == "abcd"
    assert md_escape("a.b.c.d", max_chars=4) == r"a\.b" + ELLIPSIS
    huge = "x|" * 500_000  # a 1 MB variant or file name
    shown = md_escape(huge)
    assert shown == r"x\|" * 99 + "x" + ELLIPSIS and len(shown) < 400
    assert md_escape("x" * 200) == "x" * 200  # exactly at the bound: kept whole
    assert plain_text("a\nb" * 1000, max_chars=5) == r"a\nba" + ELLIPSIS


def test_md_code_is_a_code_span_no_backtick_can_close():
    assert md_code("evil") == "`evil`"
    assert md_code("a`b") == "``a`b``"
    assert md_code("`x") == "`` `x ``"
    assert md_code("two\n\n# lines") == r"`two\n\n# lines`"  # a blank line would end the paragraph
    assert md_code("x" * 300, max_chars=10) == "`" + "x" * 9 + ELLIPSIS + "`"


def test_md_table_one_row_per_row_and_one_cell_per_header():
    table = md_table(
        ["file", "rows"],
        [[HOSTILE_FILE, 3], ["b\nc|d", 1_000], [Markdown("**no**"), None], ["x" * 500, 2.5]],
        align="lr",
    )
    assert table.split("\n") == [
        "| file | rows |",
        "|---|---:|",
        r"| a\|b\]\(javascript\:alert\(1\)\)\.jsonl | 3 |",
        r"| b\\nc\|d | 1000 |",
        "| **no** |  |",
        "| " + "x" * 199 + ELLIPSIS + " | 2.5 |",
    ]
    assert md_table(["a", "b"], [[1, 2, 3], [4]]).split("\n")[2:] == ["| 1 | 2 |", "| 4 |  |"]
    assert md_table(["a"], [[i] for i in range(5)], max_rows=2).split("\n")[2:] == ["| 0 |", "| 1 |", "| … 3 more |"]


def test_md_list_escapes_each_item():
    assert md_list(["a|b", "# c"]) == "- a\\|b\n- \\# c"
    assert md_list([]) == ""
    assert md_list(["x", "y", "z"], max_items=1) == "- x\n- … 2 more"


# --- the real ingestion asset on hostile landing files ---------------------------------------------------------------


def cells(line: str) -> list[str]:
    """A GFM table row's cells: split at '|' not preceded by a backslash (as GFM does)."""
    assert line.startswith("|") and line.endswith("|") and not line.endswith("\\|"), line
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])]


def table_rows(markdown: str, columns: int) -> list[list[str]]:
    lines = markdown.split("\n")
    header, separator, *rows = lines
    assert len(cells(header)) == columns and len(cells(separator)) == columns
    parsed = [cells(row) for row in rows]
    assert all(len(row) == columns for row in parsed), parsed
    return parsed


def test_ingestion_metadata_shows_a_hostile_file_name_and_reason_literally(data_dir: Path):
    landing = data_dir / "landing"
    hostile_type = "a|b\n\n# x <img src=x onerror=alert(1)> [l](javascript:alert(1))"
    write_lines(landing / HOSTILE_FILE, [event("m1"), event("m2", type=hostile_type)])
    long_name = "p" * 150 + "/" + "n" * 150 + "|.jsonl"  # a name longer than one path component may be
    write_lines(landing / long_name, [event("m3")])
    write_lines(landing / "clean.jsonl", [event("m4")])

    result = dg.materialize([landing_files], resources={"warehouse": WarehouseResource(data_dir=str(data_dir))})
    assert result.success
    metadata = {
        m.asset_key.path[-1]: m.metadata for m in (e.materialization for e in result.get_asset_materialization_events())
    }

    files = table_rows(metadata["load_manifest"]["files"].value, 8)
    assert len(files) == 3
    by_name = {row[0]: row for row in files}
    escaped_file = r"a\|b\]\(javascript\:alert\(1\)\)\.jsonl"
    assert by_name[escaped_file][1:7] == ["loaded", "2", "1", "0", "1", "0"]
    assert "clean\\.jsonl" in by_name
    # the long name is cut to 200 characters with an ellipsis
    assert "p" * 150 + "/" + "n" * 48 + ELLIPSIS in by_name

    reasons = table_rows(metadata["events_rejected"]["reasons"].value, 3)
    assert len(reasons) == 1
    reason, rows, example = reasons[0]
    assert reason == md_escape("unknown type: " + hostile_type)
    assert reason.startswith(r"unknown type\: a\|b\\n\\n\# x \<img src=x onerror=alert\(1\)\> \[l\]\(javascript")
    assert rows == "1" and example == escaped_file + r"\:2"

    reconcile = next(check for check in result.get_asset_check_evaluations() if check.check_name == "files_reconcile")
    assert reconcile.passed
    checked = table_rows(reconcile.metadata["files"].value, 7)
    assert len(checked) == 3 and {row[0] for row in checked} == set(by_name)
    for check in result.get_asset_check_evaluations():
        assert HOSTILE_FILE not in (check.description or "")
        for value in check.metadata.values():
            if isinstance(value, dg.MarkdownMetadataValue):
                assert HOSTILE_FILE not in value.value and "<img" not in value.value


def test_gate_problems_and_quarantined_names_are_escaped_in_the_check():
    from expectations.gate import GateOutcome
    from ingestion import FileResult
    from orchestration.defs.ingestion.assets import _batch_gate_result

    failing = GateOutcome("b1", [FileResult(HOSTILE_FILE, "missing_columns", 3, 0, 0, 3)])
    failing.batch_problems = [f"{HOSTILE_FILE}: missing column user_id\n| forged | row |", "x" * 10_000]
    check = _batch_gate_result(failing)
    assert not check.passed
    assert check.description == (
        r"a\|b\]\(javascript\:alert\(1\)\)\.jsonl\: missing column user\_id\\n\| forged \| row \|; "
        + "x" * 499
        + ELLIPSIS
    )
    problems = check.metadata["problems"].value.split("\n")
    assert len(problems) == 2 and problems[0].startswith(r"- a\|b\]\(javascript") and len(problems[1]) == 502

    waiting = GateOutcome("b2", still_quarantined=[f"{i}_<img src=x>.jsonl" for i in range(7)])
    check = _batch_gate_result(waiting)
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.description.endswith(r"0\_\<img src=x\>\.jsonl, 1\_\<img src=x\>\.jsonl, 2\_\<img src=x\>\.jsonl, "
                                      r"3\_\<img src=x\>\.jsonl, 4\_\<img src=x\>\.jsonl … 2 more")  # fmt: skip


def test_factorial_effects_table_escapes_experiment_ids_and_effect_names():
    import pandas as pd

    from orchestration.defs.experiments.assets import effects_markdown

    effects = pd.DataFrame(
        [{"experiment_id": "exp|1", "effect": "tour=" + HOSTILE_VARIANT, "log_odds": 0.5, "ci_low": -0.1,
          "ci_high": 1.1, "odds_ratio": 1.6487, "p_value": 0.01234}]
    )  # fmt: skip
    assert table_rows(effects_markdown(effects), 6) == [
        [r"exp\|1", r"tour=\*\*evil\*\*\<img src=x onerror=alert\(1\)\>", "0.500", "-0.100 .. 1.100", "1.65", "0.0123"]
    ]


def test_activation_tables_escape_the_endpoints_answer():
    from activation import ActivationReport
    from orchestration.defs.activation.assets import alerts_markdown, report_markdown

    report = ActivationReport("https://hooks.example")
    audience = report.audience("audience_churn_risk")
    audience.new_entries, audience.failed, audience.last_status = 3, 3, 500
    audience.last_response = "<html>\n| oops | [x](javascript:alert(1))" + "y" * 1_000
    (row,) = table_rows(report_markdown(report), 7)
    assert row[:6] == [r"audience\_churn\_risk", "3", "0", "3", "0", "0"]
    assert (
        row[6] == r"500 \<html\>\\n\| oops \| \[x\]\(javascript\:alert\(1\)\)" + "y" * 75 + ELLIPSIS
    )  # 120 characters as sent

    alert = {"kpi": "dau", "value": 1.0, "expected": 10.0, "band_low": 5.0, "band_high": 15.0, "direction": "down"}
    assert table_rows(alerts_markdown([alert]), 5) == [["dau", "1.0", "10.0", "5.0 .. 15.0", "down"]]


def test_ml_tables_are_escaped_frames_with_numbers_right_aligned():
    import pandas as pd

    from orchestration.defs.ml.assets import markdown_table

    frame = pd.DataFrame({"cluster_name": ["power|users", "light"], "users": [3, 4], "share": [0.42857, 0.57143]})
    table = markdown_table(frame).value
    assert table.split("\n")[:2] == ["| cluster\\_name | users | share |", "|---|---:|---:|"]
    assert table_rows(table, 3) == [[r"power\|users", "3", "0.429"], ["light", "4", "0.571"]]


def test_log_lines_of_ingestion_hold_a_hostile_name_on_one_line(data_dir: Path, caplog):
    import logging

    from ingestion import IngestSettings, ingest_landing

    name = "x\x1b[2Jy\nforged: loaded.jsonl"
    write_lines(data_dir / "landing" / name, [event("m1"), event("m2", type="a\nb")])
    with caplog.at_level(logging.INFO, logger="ingestion.loader"):
        (result,) = ingest_landing(IngestSettings(data_dir=data_dir)).files
    assert result.file_name == name and result.rows_rejected == 1  # the name is kept as it is in the tables
    (line,) = [r.getMessage() for r in caplog.records if "loaded +" in r.getMessage()]
    assert line.startswith(r"x\x1b[2Jy\nforged: loaded.jsonl: loaded, 2 in = 1 loaded") and "\n" not in line
