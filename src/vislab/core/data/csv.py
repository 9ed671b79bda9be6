"""Robust CSV reading: survives unquoted commas in a text column, counts malformed rows, and
checks that the columns a lab needs are there."""
from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vislab.core.data.images import DataError

NA_STRINGS = {"", "NA", "N/A", "NaN", "nan", "null", "None"}


@dataclass
class CsvReport:
    rows: int = 0
    repaired: list[int] = field(default_factory=list)   # line numbers whose surplus commas were rejoined
    malformed: list[int] = field(default_factory=list)  # line numbers dropped (too few fields)


def read_csv(path: str | Path, text_col: str | None = None) -> tuple[pd.DataFrame, CsvReport]:
    """Read a CSV whose free-text column may contain unquoted commas.

    The original Kaggle `styles.csv` has 22 such rows (`productDisplayName`, the last column).
    A row with more fields than the header gets its surplus joined back into `text_col`
    (default: the last column), so nothing is lost; a row with too few fields is dropped and
    its line number reported. All values are read as strings; NA markers become missing.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist")
    rep = CsvReport()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"CSV file {path} is empty") from None
        n = len(header)
        ti = header.index(text_col) if text_col in header else n - 1
        rows = []
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) > n:
                extra = len(row) - n
                row = row[:ti] + [",".join(row[ti:ti + extra + 1])] + row[ti + extra + 1:]
                rep.repaired.append(reader.line_num)
            elif len(row) < n:
                rep.malformed.append(reader.line_num)
                continue
            rows.append(row)
    df = pd.DataFrame(rows, columns=header, dtype=object)
    df = df.map(lambda v: None if v is None or v.strip() in NA_STRINGS else v.strip())
    rep.rows = len(df)
    return df, rep


def require_columns(df: pd.DataFrame, cols: Sequence[str], what: str = "label") -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{what} column(s) {missing} not in the CSV; columns present: {list(df.columns)}")
