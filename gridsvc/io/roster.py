"""Reading rosters: CSV or XLSX tables of members or work-unit organisations.

- A file with no rows under its header is refused (nothing to import is a mistake).
- Row numbers are the ones a spreadsheet shows: the header is row 1 and the first data row
  is row 2. Blank rows are skipped; the rows after them keep their spreadsheet numbers.
- CSV text is UTF-8 (with or without a BOM), else GB18030, a superset of GBK, which is what
  Excel on Chinese Windows writes as "CSV". Any other encoding must be re-saved as UTF-8.
- XLSX: the first worksheet, read with openpyxl. Whole numbers stored as floats (a phone typed
  into a number cell) come back without ".0".
- Every cell obeys ``gridsvc.validation.text_rules`` (valid Unicode, no control characters,
  at most ``TEXT_MAX`` characters), else the whole file is refused naming the row and column:
  a line break or tab inside a cell (Excel's Alt+Enter) reads as a space first.
- Columns are matched to fields through an alias table after normalising the header (NFKC,
  so full-width letters become half-width; spaces removed; lower case). The first column that
  matches a field wins; columns matching no field are ignored but kept in each row's raw data.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gridsvc.validation.text_rules import TEXT_MAX, text_problem

SUFFIXES = (".csv", ".xlsx")
ENCODINGS = ("utf-8-sig", "gb18030")


class RosterError(ValueError):
    """The file cannot be read as a roster; the message names the file and says why, ``row``
    and ``field`` (the column) where one cell is at fault."""

    def __init__(self, message: str, *, row: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.field = field


@dataclass
class Roster:
    """A roster read from a file: the header, which column holds which field, and the rows."""

    filename: str
    columns: list[str]  # as written in the header
    fields: dict[str, str]  # field -> column
    rows: list[tuple[int, dict[str, str]]]  # (spreadsheet row number, {column: text})

    def values(self, raw: Mapping[str, str]) -> dict[str, str]:
        """One row as {field: text} (fields without a column are left out)."""
        return {f: raw.get(c, "") for f, c in self.fields.items()}


def header_key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def read_roster(path: Path, aliases: Mapping[str, Sequence[str]],
                required: Sequence[str], filename: str | None = None) -> Roster:
    """Read ``path`` and match its header to ``aliases`` ({field: header names}).

    Raises ``RosterError`` for an unreadable file, or a header lacking a ``required`` field,
    naming the columns it found.
    """
    path = Path(path)
    name = filename or path.name
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _csv_table(path.read_bytes(), name)
    elif suffix == ".xlsx":
        table = _xlsx_table(path, name)
    else:
        raise RosterError(f"{name}: a roster must be a {' or '.join(SUFFIXES)} file")
    if not table:
        raise RosterError(f"{name}: the file is empty; the first row must be the header")
    table = [[_clean_cell(cell, number, name, table[0], i) for i, cell in enumerate(cells)]
             for number, cells in enumerate(table, start=1)]
    columns = [c.strip() for c in table[0]]
    fields: dict[str, str] = {}
    by_key = {header_key(a): f for f, names in aliases.items() for a in (f, *names)}
    for column in columns:
        field = by_key.get(header_key(column))
        if field and field not in fields:
            fields[field] = column
    missing = [f for f in required if f not in fields]
    if missing:
        wanted = "; ".join(f"{f} ({', '.join(aliases[f])})" for f in missing)
        found = ", ".join(c for c in columns if c) or "none"
        raise RosterError(f"{name}: the header (row 1) has no column for {wanted}; "
                          f"columns found: {found}")
    rows = []
    for number, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        raw = {column: (cells[i].strip() if i < len(cells) else "")
               for i, column in enumerate(columns) if column}
        rows.append((number, raw))
    if not rows:
        raise RosterError(f"{name}: the file has a header but no rows below it; nothing was "
                          "imported")
    return Roster(name, columns, fields, rows)


_CELL_BREAKS = str.maketrans("\r\n\t", "   ")


def _clean_cell(cell: str, row: int, name: str, header: Sequence[str], position: int) -> str:
    """A cell with its line breaks and tabs as spaces, or RosterError naming row and column
    when it breaks the text rules."""
    cell = cell.translate(_CELL_BREAKS)
    reason = text_problem(cell, TEXT_MAX)
    if reason is None:
        return cell
    column = header[position].translate(_CELL_BREAKS).strip() if row > 1 else ""
    label = column or f"column {position + 1}"
    raise RosterError(f"{name}: row {row}, {label}: the cell {reason}", row=row, field=label)


def _csv_table(data: bytes, name: str) -> list[list[str]]:
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            return list(reader)
        except csv.Error as exc:  # a cell past csv's field limit, a NUL in older Pythons
            row = reader.line_num
            raise RosterError(f"{name}: row {row} cannot be read as CSV ({exc}); a cell may "
                              f"hold at most {TEXT_MAX:,} characters", row=row) from None
    raise RosterError(f"{name}: the text is neither UTF-8 nor GBK/GB18030; save it as "
                      "CSV UTF-8")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_table(path: Path, name: str) -> list[list[str]]:
    """The first worksheet's rows, every one of them: the ``<dimension>`` a workbook declares
    is ignored (read-only openpyxl would trust it and drop the rows past it). Any fault in
    the workbook, its XML (a DOCTYPE entity is refused by defusedxml) or a cell is a
    ``RosterError``: a roster is read whole or not at all."""
    import openpyxl.xml
    from openpyxl import load_workbook

    if not openpyxl.xml.DEFUSEDXML:  # a dependency; never parse an upload without it
        raise RosterError(f"{name}: .xlsx rosters need the defusedxml package installed")
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a broken file
        raise RosterError(f"{name}: not a readable .xlsx workbook ({_reason(exc)})") from None
    try:
        if not book.worksheets:
            raise RosterError(f"{name}: the workbook has no worksheet")
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # read to the last row there is, not to <dimension>
        return [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    except RosterError:
        raise
    except Exception as exc:  # malformed sheet XML, an entity, a bad cell
        raise RosterError(f"{name}: the workbook is malformed ({_reason(exc)})") from None
    finally:
        book.close()


def _reason(exc: Exception) -> str:
    """An exception as a short, printable reason for a message."""
    text = str(exc) or type(exc).__name__
    return "".join(ch if ch.isprintable() else " " for ch in text[:200])
