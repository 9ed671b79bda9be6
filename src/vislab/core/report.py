"""Self-contained run/comparison reports: one offline HTML file (inline CSS, base64 PNGs) + a Markdown twin.

```python
write_report(out_dir, "CIFAR-10 run", [
    Section("Summary", "Best epoch 4: lowest validation loss.", card=True, notes=["gender: at its baseline"]),
    Section("Metrics", tables=[Table(["k", "v"], [["acc", 0.93]])],
            images=[Figure("cm.png", "Confusion matrix: rows are the true class")])],
    meta={"command": "vislab ..."})
```
writes ``out_dir/report.html`` (no external URL, no script) and ``out_dir/report.md`` (GitHub pipe tables,
images linked relative to ``out_dir``; images outside ``out_dir`` are copied to ``out_dir/figures/``).
What matters comes first: the summary card (a `card=True` section) sits above the run's details; figures
sit in a grid (two per row where they fit, `size="small"` ones three or four) with a caption in words.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import numbers
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["rich_console", "Table", "Section", "Figure", "write_report", "format_cell", "hardware", "flat_config",
           "to_yaml"]

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".webp": "image/webp", ".svg": "image/svg+xml"}


@dataclass
class Table:
    columns: list[str]
    rows: list[list]
    """Cells: str / int / float; floats are written with 4 decimals (0.9412), strings verbatim."""
    caption: str = ""


@dataclass
class Figure:
    path: Path
    caption: str = ""
    """What the figure shows, in words (the file name when empty)."""
    size: str = "normal"
    """normal (two per row where they fit), small (three or four per row), wide (a whole row)."""


@dataclass
class Section:
    title: str
    text: str = ""
    """Plain text; a blank line starts a new paragraph. Escaped in HTML."""
    tables: list[Table] = field(default_factory=list)
    images: list[Path | Figure] = field(default_factory=list)
    """PNG paths or `Figure`s (embedded in the HTML, linked from the Markdown)."""
    notes: list[str] = field(default_factory=list)
    """Warnings in plain words, listed after the tables (e.g. "gender: at its majority baseline")."""
    card: bool = False
    """The summary card: drawn as a box and placed at the top of the report, above the run's details."""


def _figure(item: Path | Figure) -> Figure:
    return item if isinstance(item, Figure) else Figure(Path(item))


def format_cell(v: Any) -> str:
    """str verbatim; bool/int as is; a float with at most 4 decimals and no trailing zeros (93.3, 0.9412,
    12,345.6; whole numbers without a point; tiny non-zero values in scientific notation)."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 1) == 0:
        v = v.item()  # numpy / torch scalar
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f != 0 and abs(f) < 1e-3:
            return f"{f:.3e}"
        if f.is_integer():
            return f"{f:,.0f}" if abs(f) >= 10_000 else str(int(f))
        text = f"{f:,.1f}" if abs(f) >= 10_000 else f"{f:.4f}".rstrip("0").rstrip(".")
        return text
    return str(v)


_NUMERIC = re.compile(r"[+-]?[\d,]*\.?\d+%?")
"""Text that is a number ("62.4%", "+1.1"): right-aligned like one."""


def _is_num(v: Any) -> bool:
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 1) == 0:
        v = v.item()
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def _slugs(titles: Sequence[str]) -> list[str]:
    """GitHub-style heading anchors (lower case, punctuation dropped, spaces -> '-', duplicates -1, -2)."""
    seen: dict[str, int] = {}
    out = []
    for t in titles:
        s = re.sub(r"[^\w\- ]", "", str(t).strip().lower()).replace(" ", "-") or "section"
        if s in seen:
            seen[s] += 1
            s2 = f"{s}-{seen[s]}"
        else:
            seen[s] = 0
            s2 = s
        out.append(s2)
    return out


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text or "") if p.strip()]


# ------------------------------------------------------------------------------------------------ HTML
_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:1150px;margin:2em auto;
 padding:0 1.2em;color:#222;line-height:1.45;background:#fff}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{border-bottom:1px solid #eee;padding-bottom:.2em;margin-top:2em}
nav.toc{background:#f7f7f9;border:1px solid #e3e3e8;border-radius:6px;padding:.6em 1.2em;display:inline-block}
nav.toc ol{margin:.3em 0;padding-left:1.4em}
a{color:#0b5cad;text-decoration:none} a:hover{text-decoration:underline}
table{border-collapse:collapse;margin:.8em 0 1.2em;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .65em;text-align:left;vertical-align:top}
th{background:#eef1f5} tbody tr:nth-child(even){background:#f8f9fb}
td.num{text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,Menlo,Consolas,monospace}
caption{caption-side:top;text-align:left;font-weight:600;padding:.2em 0;color:#444}
table.meta{font-size:.85em} table.meta th{background:#f3f3f3;font-weight:600}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,520px),1fr));gap:1em;margin:1em 0}
.figs.small{grid-template-columns:repeat(auto-fill,minmax(min(100%,260px),1fr))}
figure{margin:0;min-width:0} figure.wide{grid-column:1/-1}
figure img{max-width:100%;height:auto;border:1px solid #e5e5e5;display:block}
figcaption{font-size:.85em;color:#555;margin-top:.3em}
section.card{border:2px solid #0b5cad;border-radius:8px;padding:.2em 1.2em .8em;background:#f5f9ff;margin:1em 0}
section.card h2{margin-top:.6em;border:none}
ul.notes{background:#fff6e5;border-left:4px solid #e69500;padding:.5em 1em .5em 2em;margin:.8em 0}
.tablegrid{display:flex;flex-wrap:wrap;gap:0 1.5em;align-items:flex-start}
.tables{overflow-x:auto;max-width:100%;min-width:0}
p.missing{color:#a00}
footer{margin-top:3em;font-size:.8em;color:#888;border-top:1px solid #eee;padding-top:.5em}
"""


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _html_table(t: Table, cls: str = "") -> str:
    out = [f'<table{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>']
    if t.caption:
        out.append(f"<caption>{_e(t.caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in t.columns) + "</tr></thead>")
    out.append("<tbody>")
    for row in t.rows:
        cells = []
        for v in row:
            num = ' class="num"' if _is_num(v) or (isinstance(v, str) and _NUMERIC.fullmatch(v)) else ""
            cells.append(f"<td{num}>{_e(format_cell(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _html_image(item: Path | Figure) -> str:
    f = _figure(item)
    p = Path(f.path)
    if not p.is_file():
        return f'<p class="missing">missing image: {_e(p)}</p>'
    mime = _MIME.get(p.suffix.lower(), "image/png")
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    caption = f.caption or p.name
    cls = ' class="wide"' if f.size == "wide" else ""
    return (f'<figure{cls}><img src="data:{mime};base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _html_figures(items: Sequence[Path | Figure]) -> list[str]:
    """Figures in grids: consecutive small ones together (3-4 per row), the rest two per row."""
    out, run, small = [], [], None
    for item in list(items) + [None]:
        is_small = item is not None and _figure(item).size == "small"
        if run and (item is None or is_small != small):
            out.append(f'<div class="figs{" small" if small else ""}">' + "".join(map(_html_image, run)) + "</div>")
            run = []
        if item is not None:
            run.append(item)
            small = is_small
    return out


def _render_html(title: str, sections: Sequence[Section], meta: Mapping[str, str] | None, created: str) -> str:
    slugs = _slugs([s.title for s in sections])
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>{_e(title)}</h1>"]
    cards = [(s, slug) for s, slug in zip(sections, slugs) if s.card]
    rest = [(s, slug) for s, slug in zip(sections, slugs) if not s.card]
    for s, slug in cards:  # what matters first: above the run's details
        parts += _html_section(s, slug)
    if meta:
        parts.append(_html_table(Table(["key", "value"], [[str(k), str(v)] for k, v in meta.items()]), "meta"))
    if rest:
        parts.append('<nav class="toc"><strong>Contents</strong><ol>')
        parts += [f'<li><a href="#{slug}">{_e(s.title)}</a></li>' for s, slug in rest]
        parts.append("</ol></nav>")
    for s, slug in rest:
        parts += _html_section(s, slug)
    parts.append(f"<footer>Generated by vislab on {_e(created)}.</footer>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _html_section(s: Section, slug: str) -> list[str]:
    cls = ' class="card"' if s.card else ""
    parts = [f'<section id="{slug}"{cls}>', f"<h2>{_e(s.title)}</h2>"]
    for para in _paragraphs(s.text):
        parts.append("<p>" + "<br>\n".join(_e(line) for line in para.split("\n")) + "</p>")
    if s.tables:  # side by side where they fit; a wide one scrolls inside its own box, never the page
        parts.append('<div class="tablegrid">' + "".join(f'<div class="tables">{_html_table(t)}</div>'
                                                          for t in s.tables) + "</div>")
    if s.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in s.notes) + "</ul>")
    parts += _html_figures(s.images)
    parts.append("</section>")
    return parts


# -------------------------------------------------------------------------------------------- Markdown
def _md_cell(v: Any) -> str:
    s = format_cell(v).replace("\\", "\\\\").replace("|", "\\|")
    s = s.replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"\s*\n\s*", " ", s).strip()


def _md_text(s: str) -> str:
    """Plain text for Markdown: "<" could open HTML, so it is escaped; ">" only matters at a line's start
    (a quote), so "a > b" stays readable."""
    return re.sub(r"(?m)^(\s*)>", r"\1\\>", str(s).replace("<", "&lt;"))


def _md_table(t: Table) -> str:
    lines = []
    if t.caption:
        lines += [f"**{_md_text(t.caption)}**", ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in t.columns) + " |")
    lines.append("|" + "|".join("---:" if _col_numeric(t, i) else "---" for i in range(len(t.columns))) + "|")
    for row in t.rows:
        cells = [_md_cell(v) for v in row] + [""] * max(0, len(t.columns) - len(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _col_numeric(t: Table, i: int) -> bool:
    vals = [r[i] for r in t.rows if i < len(r)]
    return bool(vals) and all(_is_num(v) for v in vals)


def _md_image(item: Path | Figure, out_dir: Path, used: dict[str, Path]) -> str:
    f = _figure(item)
    p = Path(f.path)
    if not p.is_file():
        return f"*missing image: {_md_text(p)}*"
    src = p.resolve()
    try:
        rel = src.relative_to(out_dir.resolve())
    except ValueError:  # outside out_dir: copy into out_dir/figures/ under a free name
        fig_dir = out_dir / "figures"
        fig_dir.mkdir(parents=True, exist_ok=True)
        name, k = p.name, 1
        while name in used and used[name] != src:
            name = f"{p.stem}_{k}{p.suffix}"
            k += 1
        dst = fig_dir / name
        if used.get(name) != src:
            shutil.copy2(src, dst)
            used[name] = src
        rel = dst.relative_to(out_dir)
    link = rel.as_posix()
    if re.search(r"[\s()<>]", link):
        link = f"<{link}>"
    alt = _md_text(f.caption or p.stem).replace("[", "(").replace("]", ")")
    return f"![{alt}]({link})" + (f"  \n*{_md_text(f.caption)}*" if f.caption else "")


def _render_md(title: str, sections: Sequence[Section], meta: Mapping[str, str] | None, created: str,
               out_dir: Path) -> str:
    sections = [s for s in sections if s.card] + [s for s in sections if not s.card]
    slugs = _slugs([s.title for s in sections])
    out = [f"# {_md_text(title)}", ""]
    used: dict[str, Path] = {}
    cards = [s for s in sections if s.card]
    for s in cards:
        out += _md_section(s, out_dir, used)
    if meta:
        out += [_md_table(Table(["key", "value"], [[str(k), str(v)] for k, v in meta.items()])), ""]
    rest = [(s, slug) for s, slug in zip(sections, slugs) if not s.card]
    if rest:
        out += ["## Contents", ""]
        out += [f"{i}. [{_md_text(s.title)}](#{slug})" for i, (s, slug) in enumerate(rest, 1)]
        out.append("")
    for s, _ in rest:
        out += _md_section(s, out_dir, used)
    out += ["---", f"*Generated by vislab on {created}.*", ""]
    return "\n".join(out)


def _md_section(s: Section, out_dir: Path, used: dict[str, Path]) -> list[str]:
    out = [f"## {_md_text(s.title)}", ""]
    for para in _paragraphs(s.text):
        out += ["  \n".join(_md_text(line) for line in para.split("\n")), ""]
    for t in s.tables:
        out += [_md_table(t), ""]
    if s.notes:
        out += [f"- **{_md_text(n)}**" for n in s.notes] + [""]
    for p in s.images:
        out += [_md_image(p, out_dir, used), ""]
    return out


def write_report(out_dir, title: str, sections: Sequence[Section],
                 meta: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/report.html`` (offline, images embedded) and ``out_dir/report.md``; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = list(sections)
    created = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(_render_html(title, sections, meta, created), encoding="utf-8")
    md_path.write_text(_render_md(title, sections, meta, created, out_dir), encoding="utf-8")
    return html_path, md_path


def hardware() -> str:
    """One line naming the machine a number was measured on."""
    import os
    import platform

    import torch
    cpu = platform.processor() or platform.machine()
    s = f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}"
    if torch.cuda.is_available():
        s += f", GPU {torch.cuda.get_device_name(0)}"
    return s


def flat_config(d: dict, prefix: str = "") -> list[list]:
    """Nested config dict -> [["train.lr", "0.001"], ...] rows for a report table."""
    import json
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += flat_config(v, f"{prefix}{k}.")
        else:
            out.append([f"{prefix}{k}", json.dumps(v)])
    return out


def to_yaml(d: dict) -> str:
    import yaml
    return yaml.safe_dump(d, sort_keys=False)


def rich_console():
    """The console labs print their summaries to (rich, imported only when needed)."""
    from rich.console import Console
    return Console()
