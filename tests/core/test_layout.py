"""The house rules, checked: `vislab.core` never imports a lab, no import cycles, the generated reference
pages are current, and every command, flag, packaged config and Python name the docs mention exists."""
from __future__ import annotations

import ast
import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "vislab"
DOCS = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Absolute names of the vislab modules a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    mod = _module(path)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("vislab")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("vislab"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}
    return out


MODULES = {_module(p): p for p in SRC.rglob("*.py")}


def test_core_never_imports_a_lab():
    bad = {m: sorted(i for i in _imports(p, top_level_only=False)
                     if i.startswith(("vislab.labs", "vislab.cli", "vislab.docgen")) or i == "vislab.load")
           for m, p in MODULES.items() if m.startswith("vislab.core")}
    bad = {m: v for m, v in bad.items() if v}
    assert not bad, f"vislab.core imports lab code: {bad}"
    assert len([m for m in MODULES if m.startswith("vislab.core")]) >= 15  # the walk saw the whole core


def test_no_import_cycles_between_modules():
    graph = {m: {i for i in _imports(p, top_level_only=True) if i in MODULES and i != m} for m, p in MODULES.items()}
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}  # a package's own child
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            visit(d)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_generated_reference_pages_are_current(monkeypatch):
    from vislab import docgen
    monkeypatch.chdir(ROOT)
    assert docgen.main(["--check"]) == 0, "docs/reference is stale: run `python -m vislab.docgen`"
    assert "vislab vae evaluate" in (ROOT / "docs" / "reference" / "cli.md").read_text()


def _code_lines():
    for doc in DOCS:
        if doc.parent.name == "reference":  # generated from the app itself
            continue
        for block in re.findall(r"```(?:bash|console|sh)?\n(.*?)```", doc.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip().lstrip("$ ").strip()
                if line.startswith("vislab ") or line.startswith(".venv/bin/vislab "):
                    yield doc.name, line.split("vislab ", 1)[1]


def test_every_documented_command_and_flag_exists():
    import typer

    from vislab.cli import app
    from vislab.core.config import packaged_configs
    root = typer.main.get_command(app)
    lines = list(_code_lines())
    assert len(lines) > 40
    shipped = set(packaged_configs())
    for doc, line in lines:
        words = shlex.split(line.split("|")[0].split(">")[0].split("&&")[0])
        cmd = root
        while words and hasattr(cmd, "commands") and words[0] in cmd.commands:
            cmd = cmd.commands[words.pop(0)]
        assert not hasattr(cmd, "commands") or words[:1] == ["--version"], f"{doc}: `vislab {line}` names no command"
        flags = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        for i, w in enumerate(words):
            if w.startswith("-") and not re.match(r"-\d", w):
                assert w.split("=")[0] in flags, f"{doc}: `vislab {line}`: no option {w}"
            if i and words[i - 1] in ("-c", "--config") and not w.endswith((".yaml", ".yml")):
                assert w in shipped, f"{doc}: `vislab {line}`: no packaged config {w}"


def test_every_documented_python_name_exists():
    names = set()
    for doc in DOCS:
        text = doc.read_text()
        names |= set(re.findall(r"\b(vislab(?:\.[A-Za-z_]\w*)+)", text))
        for mod, what in re.findall(r"from (vislab(?:\.\w+)*) import ([\w, ]+)", text):
            names |= {f"{mod}.{n.strip()}" for n in what.split(",") if n.strip()}
    names = {n for n in names if not n.endswith((".py", ".yaml", ".md", ".safetensors", ".json"))}
    assert len(names) > 20
    missing = []
    for name in sorted(names):
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert not missing, f"the docs name Python objects that do not exist: {missing}"


@pytest.mark.parametrize("doc", ["labs/fashion.md", "labs/cifar.md", "labs/siamese.md", "labs/vae.md"])
def test_each_lab_page_has_results_and_how_to_reproduce(doc):
    text = (ROOT / "docs" / doc).read_text()
    assert re.search(r"^#+ .*Results", text, re.M), f"{doc} has no results section"
    assert re.search(r"\|\s*[\d.,]+\s*%?\s*\|", text), f"{doc} has no results table with numbers"
    assert "vislab " in text and "-c " in text, f"{doc} does not say how to reproduce its runs"
