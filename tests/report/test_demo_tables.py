"""Every table a demo run writes is safe to open in a spreadsheet (no cell can start a formula).

The reduced demo (tests/report/conftest.py) runs all stages on real data; its CSVs carry registry
titles, sponsors, paper titles and authors, target names and evidence tables. ``scan_formulas``
(tests/conftest.py) flags a cell starting with = + @, TAB, CR, or a '-' that is not a plain number.
"""

from __future__ import annotations


def test_no_demo_table_cell_can_start_a_formula(demo_run, scan_formulas):
    out, _ = demo_run
    tables = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv"))
    # every stage wrote its tables (so the scan below is not vacuous)
    for stage in ("trials", "literature", "evidence", "connectome"):
        assert sum(t.startswith(stage + "/") for t in tables) >= 3, (stage, tables)
    assert len(tables) >= 40
    assert scan_formulas(out) == []
