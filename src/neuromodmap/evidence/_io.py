"""Read and write the extraction sheet (CSV or Excel). Importers only: no analysis here."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

from neuromodmap._utils import atomic_write, defuse_formula, defuse_row, restore_formula
from neuromodmap.evidence._errors import SheetError
from neuromodmap.evidence.sheet import (
    COLUMNS,
    DESIGNS,
    NUMERIC_COLUMNS,
    SHAM_TYPES,
    data_dictionary,
)

__all__ = ["read_sheet", "write_template", "write_sheet", "DATA_SHEET", "DICTIONARY_SHEET"]

DATA_SHEET = "extraction"
DICTIONARY_SHEET = "dictionary"
_REQUIRED_HEADER = ("study_id", "modality")
_MAX_BYTES = 50 * 1024 * 1024


def _check_header(path: Path, header: list[Any]) -> list[str]:
    names = ["" if h is None else str(h).strip() for h in header]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise SheetError(f"{path}: the first row is empty; expected a header row with {', '.join(_REQUIRED_HEADER)}, ...")
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if not name:
            raise SheetError(f"{path}: header cell in column {i} is empty")
        if name in seen:
            raise SheetError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
    missing = [c for c in _REQUIRED_HEADER if c not in seen]
    if missing:
        raise SheetError(f"{path}: required column(s) missing from the header: {', '.join(missing)} "
                         f"(write an empty sheet with `neuromodmap evidence template`)")
    return names


def read_sheet(path: str | Path, sheet: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Read an extraction sheet into raw row dicts (values as typed in the file).

    Returns ``(rows, notes)``: every non-blank data row as ``{column: value}`` with the
    key ``_row`` holding the row number the user sees, and notes such as ignored
    unknown columns. Raises :class:`SheetError` for files that cannot be read as a sheet:
    wrong extension, not UTF-8, a broken or legacy Excel file, merged cells, several
    data sheets, a missing header.
    """
    path = Path(path)
    if not path.is_file():
        raise SheetError(f"{path}: file not found")
    if path.stat().st_size > _MAX_BYTES:
        raise SheetError(f"{path}: file is larger than {_MAX_BYTES // 2**20} MB; is this an extraction sheet?")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        header, body = _read_csv(path, "\t" if suffix == ".tsv" else None)
    elif suffix in (".xlsx", ".xlsm"):
        header, body = _read_xlsx(path, sheet)
    elif suffix == ".xls":
        raise SheetError(f"{path}: legacy .xls workbooks are not supported; save it as .xlsx or .csv")
    else:
        raise SheetError(f"{path}: unknown sheet format {suffix!r}; use .csv or .xlsx")
    names = _check_header(path, header)
    notes = []
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        notes.append(f"ignored column(s) not in the extraction sheet: {', '.join(unknown)}")
    rows = []
    for number, values in body:
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        if len(values) > len(names) and any(v not in (None, "") for v in values[len(names):]):
            raise SheetError(f"{path}: row {number} has values beyond the last named column {names[-1]!r}")
        # restore_formula: text this package defused when it wrote the sheet reads back as written
        row = {name: (restore_formula(values[i]) if i < len(values) else None)
               for i, name in enumerate(names) if name in COLUMNS}
        row["_row"] = number
        rows.append(row)
    return rows, notes


def _read_csv(path: Path, delimiter: str | None):
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark (Excel's "Unicode Text")
        try:
            raw = raw.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise SheetError(f"{path}: starts as UTF-16 text but is not valid UTF-16; save the sheet as "
                             "'CSV UTF-8'") from None
    if b"\x00" in raw[:4096]:
        head = raw[:4096]
        utf16 = head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4
        raise SheetError(f"{path}: " + ("UTF-16 text without a byte-order mark" if utf16 else
                                        "binary content (NUL bytes), not a CSV text file")
                         + "; save the sheet as 'CSV UTF-8' (or .xlsx)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SheetError(f"{path}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}); "
                         "save the sheet as 'CSV UTF-8'") from None
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        table = list(reader)
    except csv.Error as exc:
        raise SheetError(f"{path}: malformed CSV near line {reader.line_num}: {exc}") from None
    if not table:
        raise SheetError(f"{path}: the file is empty")
    body = [(i + 2, [c if c != "" else None for c in row]) for i, row in enumerate(table[1:])]
    return table[0], body


def _read_xlsx(path: Path, sheet: str | None):
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise SheetError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    names = wb.sheetnames
    if sheet is not None:
        if sheet not in names:
            raise SheetError(f"{path}: no sheet named {sheet!r}; the workbook has {', '.join(names)}")
        ws = wb[sheet]
    else:
        data_sheets = [n for n in names if n != DICTIONARY_SHEET]
        if len(data_sheets) > 1:
            raise SheetError(
                f"{path}: the workbook has {len(data_sheets)} sheets besides the data dictionary "
                f"({', '.join(data_sheets)}); keep the data in one sheet named {DATA_SHEET!r} "
                "or pass --sheet NAME"
            )
        if not data_sheets:
            raise SheetError(f"{path}: no data sheet (only {', '.join(names)})")
        ws = wb[data_sheets[0]]
    merged = [str(r) for r in ws.merged_cells.ranges]
    if merged:
        raise SheetError(f"{path}, sheet {ws.title!r}: merged cells at {', '.join(merged[:10])}"
                         f"{' ...' if len(merged) > 10 else ''}; unmerge them and fill every cell")
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        raise SheetError(f"{path}, sheet {ws.title!r}: the sheet is empty")
    body = [(i + 2, list(values)) for i, values in enumerate(rows)]
    return list(header), body


def write_template(path: str | Path) -> list[Path]:
    """Write an empty extraction sheet plus its data dictionary; return the files written.

    ``.xlsx``: sheet ``extraction`` (header, drop-down lists for coded columns) and sheet
    ``dictionary``. ``.csv``: the header only, and ``<name>.dictionary.csv`` beside it.
    """
    return write_sheet(path, [])


def write_sheet(path: str | Path, rows: list[dict[str, Any]]) -> list[Path]:
    """Write an extraction sheet with ``rows`` (dicts keyed by :data:`COLUMNS`) pre-filled.

    For the literature stage: included records go in with their citation columns
    filled (:data:`~neuromodmap.evidence.sheet.CITATION_COLUMNS`) and the rest left for
    reviewers. Unknown keys are refused; text that a spreadsheet would run as a formula
    (starting with ``=``, ``+``, ``-``, ``@``, TAB, CR; see :func:`neuromodmap._utils.defuse_formula`)
    is prefixed with an apostrophe, which :func:`read_sheet` removes again.
    """
    path = Path(path)
    for i, row in enumerate(rows):
        unknown = [key for key in row if key not in COLUMNS]
        if unknown:
            raise SheetError(f"row {i + 1}: unknown column(s) {', '.join(unknown)}; see neuromodmap.evidence.COLUMNS")
    table = [defuse_row(row.get(c) for c in COLUMNS) for row in rows]
    suffix = path.suffix.lower()
    dictionary = data_dictionary()
    if suffix == ".csv":
        side = path.with_name(path.stem + ".dictionary.csv")
        with atomic_write(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            writer.writerows(table)
        with atomic_write(side, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(dictionary[0]))
            writer.writeheader()
            writer.writerows({k: defuse_formula(v) for k, v in entry.items()} for entry in dictionary)
        return [path, side]
    if suffix != ".xlsx":
        raise SheetError(f"{path}: the template can be written as .xlsx or .csv, not {suffix!r}")
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    from neuromodmap import vocabulary

    wb = Workbook()
    ws = wb.active
    ws.title = DATA_SHEET
    ws.append(list(COLUMNS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for values in table:
        ws.append(values)
    ws.freeze_panes = "B2"
    for i, col in enumerate(COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(12, len(col) + 2)
    lists = {"design": list(DESIGNS), "sham_type": list(SHAM_TYPES), "modality": list(vocabulary.MODALITIES),
             "indication": list(vocabulary.INDICATIONS)}
    for col, values in lists.items():
        letter = get_column_letter(COLUMNS.index(col) + 1)
        formula = '"' + ",".join(values) + '"'
        if len(formula) <= 255:  # Excel's limit for inline lists
            dv = DataValidation(type="list", formula1=formula, allow_blank=True)
            dv.add(f"{letter}2:{letter}5000")
            ws.add_data_validation(dv)
    for col in NUMERIC_COLUMNS:
        letter = get_column_letter(COLUMNS.index(col) + 1)
        dv = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="-1000000", allow_blank=True,
                            showErrorMessage=True, error="Enter a number")
        dv.add(f"{letter}2:{letter}5000")
        ws.add_data_validation(dv)
    dict_ws = wb.create_sheet(DICTIONARY_SHEET)
    dict_ws.append(list(dictionary[0]))
    for cell in dict_ws[1]:
        cell.font = Font(bold=True)
    for entry in dictionary:
        dict_ws.append(defuse_row(entry.values()))
    dict_ws.column_dimensions["A"].width = 24
    dict_ws.column_dimensions["D"].width = 100
    with atomic_write(path, "wb") as fh:
        wb.save(fh)
    return [path]
