"""The tag file: CSV (one flat row per image) or JSON Lines (one API-shaped object per image).

Rows are appended and flushed batch by batch, so a killed run loses at most the batch in flight. On
`--resume` a partly written last line (the kill came mid-write) is cut off, the paths already written
are skipped, and the file is only ever appended to."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from vislab.core.errors import DataError, UsageError

FORMATS = ("csv", "jsonl")


def columns(tasks: list[str]) -> list[str]:
    """CSV columns: path, label and confidence per attribute, top-k (JSON), caption, review, error."""
    per_task = [c for t in tasks for c in (t, f"{t}_confidence")]
    return ["path", *per_task, "top_k", "caption", "needs_review", "review", "error"]


def format_of(path: Path, fmt: str | None) -> str:
    if fmt is None:
        return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def flat_row(path: str, result: dict[str, Any] | None, error: str, tasks: list[str]) -> dict[str, Any]:
    """One CSV row from an API-shaped prediction (Prediction.as_dict()) or an error."""
    row: dict[str, Any] = dict.fromkeys(columns(tasks), "")
    row["path"], row["error"] = path, error
    if result is not None:
        attrs = result["attributes"]
        for t in tasks:
            row[t], row[f"{t}_confidence"] = attrs[t]["label"], f"{attrs[t]['confidence']:.4f}"
        row["top_k"] = json.dumps({t: [[k["label"], k["confidence"]] for k in attrs[t]["top_k"]] for t in tasks},
                                  separators=(",", ":"))
        row["caption"], row["needs_review"] = result["caption"], str(result["needs_review"]).lower()
        row["review"] = ";".join(result["review"])
    return row


class TagWriter:
    """Appends tag rows to `path`; `done` holds the paths already there (with resume)."""

    def __init__(self, path: str | Path, tasks: list[str], fmt: str | None = None, resume: bool = False,
                 overwrite: bool = False):
        self.path, self.tasks = Path(path), tasks
        self.fmt = format_of(self.path, fmt)
        self.done: set[str] = set()
        self.errors_before = 0
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise UsageError(f"{self.path} exists: pass --resume to continue it or --overwrite to replace it")
        if exists and resume:
            self._read_existing()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a" if exists and resume else "w", newline="", encoding="utf-8")
        if self.fmt == "csv" and not self.done and self._f.tell() == 0:
            self._writer().writeheader()
            self._f.flush()

    def _writer(self) -> csv.DictWriter:
        return csv.DictWriter(self._f, columns(self.tasks), extrasaction="raise")

    def _read_existing(self) -> None:
        raw = self.path.read_bytes()
        cut = raw.rfind(b"\n") + 1
        if cut < len(raw):  # a line cut short by a kill: drop it, it is tagged again
            with open(self.path, "r+b") as f:
                f.truncate(cut)
            raw = raw[:cut]
        text = raw.decode("utf-8")
        if self.fmt == "csv":
            reader = csv.DictReader(io.StringIO(text))
            if reader.fieldnames and reader.fieldnames != columns(self.tasks):
                raise DataError(f"{self.path} has other columns than this model writes "
                                f"({', '.join(reader.fieldnames[:4])}, ...): resume it with the same checkpoint")
            rows = list(reader)
        else:
            rows = []
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        raise DataError(f"{self.path}:{n} is not JSON: resume needs a file vislab wrote") from None
        self.done = {r["path"] for r in rows if r.get("path")}
        self.errors_before = sum(1 for r in rows if r.get("error"))

    def write(self, items: list[tuple[str, dict | None, str]]) -> None:
        """(path, prediction as_dict() or None, error) per image; flushed to disk at once."""
        if self.fmt == "csv":
            self._writer().writerows(flat_row(p, r, e, self.tasks) for p, r, e in items)
        else:
            for p, r, e in items:
                obj = {"path": p, **({k: v for k, v in r.items() if k != "image"} if r else {}), "error": e}
                self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.done.update(p for p, _, _ in items)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> TagWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
