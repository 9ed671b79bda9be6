"""plots.py writes readable PNGs; report.py writes an offline HTML report and a Markdown twin."""
from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vislab.core import plots
from vislab.core.report import Section, Table, format_cell, write_report
from vislab.labs.fashion.plots import ablation_bars, comparison_bars

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_side: int = 100) -> tuple[int, int]:
    path = Path(path)
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_SIG
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
    assert w > min_side and h > min_side, (w, h)
    return w, h


def _cm(n: int, rng: np.random.Generator) -> np.ndarray:
    support = rng.integers(1, 200, size=n)
    cm = np.zeros((n, n), dtype=np.int64)
    for i, s in enumerate(support):
        correct = int(s * 0.7)
        cm[i, i] = correct
        wrong = rng.integers(0, n, size=s - correct)
        np.add.at(cm[i], wrong, 1)
    return cm


def test_plots_does_not_import_torch():
    # plots must stay importable without torch (only checks that plots itself does not pull it in)
    import subprocess

    code = "import sys, vislab.core.plots; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(Path(plots.__file__).parents[2]), "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_class_distribution(tmp_path):
    counts = {f"class_{i}": int(1000 / (i + 1)) for i in range(60)}
    p = plots.class_distribution(counts, tmp_path / "dist.png", "articleType", top_n=40)
    assert p == tmp_path / "dist.png"
    assert_png(p)
    assert_png(plots.class_distribution({"a": 3, "b": 5}, tmp_path / "small.png", "two"))


def test_training_curves_with_missing_keys(tmp_path):
    hist = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "val_accuracy": 0.5 + 0.1 * e,
             "train_accuracy": 0.45 + 0.1 * e, "val_f1": 0.4 + 0.1 * e} for e in range(1, 5)]
    assert_png(plots.training_curves(hist, tmp_path / "curves.png"))
    assert_png(plots.training_curves([{"epoch": 1, "val_loss": 1.0}], tmp_path / "one.png"))
    assert_png(plots.training_curves([], tmp_path / "empty.png"))


def test_reduce_confusion_keeps_totals():
    rng = np.random.default_rng(0)
    n, top = 150, 25
    cm = _cm(n, rng)
    names = [f"c{i}" for i in range(n)]
    cm2, names2 = plots.reduce_confusion(cm, names, top)
    assert cm2.shape == (top + 1, top + 1)
    assert len(names2) == top + 1 and names2[-1].startswith("other")
    assert cm2.sum() == cm.sum()
    # kept = the top_n most frequent true classes
    row_sums = cm.sum(axis=1)
    kept = [names.index(nm) for nm in names2[:-1]]
    assert sorted(row_sums[kept].tolist(), reverse=True) == sorted(row_sums.tolist(), reverse=True)[:top]
    dropped = sorted(set(range(n)) - set(kept))
    assert cm2[-1].sum() == cm[dropped].sum()
    assert np.array_equal(cm2.sum(axis=1)[:-1], row_sums[kept])
    # kept x kept block is copied verbatim; 'other' column holds kept rows' predictions into dropped classes
    assert np.array_equal(cm2[:top, :top], cm[np.ix_(kept, kept)])
    assert np.array_equal(cm2[:top, top], cm[np.ix_(kept, dropped)].sum(axis=1))
    # no reduction needed -> unchanged copy
    small = np.arange(9).reshape(3, 3)
    s2, n2 = plots.reduce_confusion(small, ["a", "b", "c"], 25)
    assert np.array_equal(s2, small) and n2 == ["a", "b", "c"] and s2 is not small
    with pytest.raises(ValueError):
        plots.reduce_confusion(small, ["a", "b"], 25)


def test_confusion_matrix_150_classes_and_small(tmp_path):
    rng = np.random.default_rng(1)
    cm = _cm(150, rng)
    names = [f"articleType_{i}" for i in range(150)]
    w, h = assert_png(plots.confusion_matrix(cm, names, tmp_path / "cm150.png", "articleType", top_n=25))
    assert w < 2500 and h < 2500  # bounded size, not one row per class
    small = _cm(5, rng)
    assert_png(plots.confusion_matrix(small, ["a<b>&", "b", "c", "d", "e"], tmp_path / "cm5.png", "small"))
    assert_png(plots.confusion_matrix(small, list("abcde"), tmp_path / "cm5raw.png", "raw", normalize=False))
    zero_row = small.copy()
    zero_row[2] = 0  # class never seen as true: no division warning/crash
    assert_png(plots.confusion_matrix(zero_row, list("abcde"), tmp_path / "cm5zero.png", "zero row"))


@pytest.mark.parametrize("c", [2, 5])
def test_roc_curves(tmp_path, c):
    rng = np.random.default_rng(c)
    n = 300
    targets = rng.integers(0, c, size=n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), targets] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert_png(plots.roc_curves(probs, targets, [f"k{i}" for i in range(c)], tmp_path / f"roc{c}.png", "roc"))


def test_roc_curves_class_without_positives(tmp_path):
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 3, size=100)  # class 3 and 4 never occur
    probs = rng.dirichlet(np.ones(5), size=100)
    assert_png(plots.roc_curves(probs, targets, list("abcde"), tmp_path / "roc_missing.png", "roc", max_classes=2))


def test_bar_charts(tmp_path):
    res = {m: {t: {"accuracy": 0.5 + 0.05 * i + 0.01 * j, "f1": 0.4 + 0.05 * i + 0.01 * j}
               for j, t in enumerate(["gender", "masterCategory", "subCategory", "baseColour", "season",
                                      "articleType"])}
           for i, m in enumerate(["efficientnet_lite0", "resnet18", "mobilenetv3"])}
    del res["resnet18"]["season"]  # missing entries are tolerated
    assert_png(comparison_bars(res, tmp_path / "cmp.png"))
    assert_png(plots.summary_bars({"a": {"accuracy": 0.91, "f1": 0.85}, "b": {"accuracy": 0.88, "f1": 0.8}},
                                  tmp_path / "sum.png"))
    assert_png(ablation_bars({"baseline": {"accuracy": 0.9, "f1": 0.8, "precision": 0.82, "recall": 0.79},
                                    "tuned": {"accuracy": 0.93, "f1": 0.86, "precision": 0.87, "recall": 0.85}},
                                   tmp_path / "abl.png"))


def test_error_examples_and_grids(tmp_path):
    rng = np.random.default_rng(4)
    assert_png(plots.error_examples([], [], [], tmp_path / "none.png"))
    assert_png(plots.error_examples(np.zeros((0, 3, 32, 32), np.uint8), [], [], tmp_path / "none2.png"))
    chw = rng.integers(0, 256, size=(7, 3, 32, 24), dtype=np.uint8)  # N x 3 x H x W
    true = ["Tshirts", "a very long article type name indeed", "<b>&", "Shirts", "Jeans", "Watches", "Heels"]
    pred = ["Shirts", "Tshirts", "Jeans", "Tops", "Trousers", "Bracelet", "Flats"]
    assert_png(plots.error_examples(chw, true, pred, tmp_path / "err_chw.png", ncols=4))
    hwc = [rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8) for _ in range(3)]
    assert_png(plots.error_examples(hwc, true[:3], pred[:3], tmp_path / "err_hwc.png"))
    with pytest.raises(ValueError):
        plots.error_examples(hwc, true[:2], pred[:3], tmp_path / "bad.png")
    # generic grid: floats in [-1, 1] (generator output), grayscale batch, labels
    assert_png(plots.image_grid(rng.uniform(-1, 1, size=(16, 3, 16, 16)).astype(np.float32), tmp_path / "g.png",
                                "samples"))
    assert_png(plots.image_grid(rng.uniform(0, 1, size=(5, 28, 28)), tmp_path / "gray.png", ncols=5,
                                labels=[str(i) for i in range(5)]))


def test_torch_tensors_accepted(tmp_path):
    torch = pytest.importorskip("torch")
    cm = torch.tensor(_cm(4, np.random.default_rng(5)))
    assert_png(plots.confusion_matrix(cm, list("abcd"), tmp_path / "cmt.png", "torch"))
    imgs = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8)
    assert_png(plots.error_examples(imgs, ["a", "b"], ["b", "a"], tmp_path / "errt.png"))
    probs = torch.softmax(torch.randn(50, 3), dim=1)
    assert_png(plots.roc_curves(probs, torch.randint(0, 3, (50,)), list("abc"), tmp_path / "roct.png", "t"))


# ------------------------------------------------------------------------------------------- report
def test_format_cell():
    assert format_cell(0.941234) == "0.9412"
    assert format_cell(np.float32(0.5)) == "0.5"  # no trailing zeros: 93.3, never 93.3000
    assert format_cell(93.3) == "93.3" and format_cell(2.0) == "2" and format_cell(12345.67) == "12,345.7"
    assert format_cell(0.00012) == "1.200e-04"
    assert format_cell(3) == "3" and format_cell(np.int64(7)) == "7"
    assert format_cell("0.123456") == "0.123456"
    assert format_cell(float("nan")) == "nan"


def _report(tmp_path):
    figs = tmp_path / "figs_outside"
    out = tmp_path / "run" / "report"
    inside = out / "plots"
    p1 = plots.summary_bars({"a": {"accuracy": 0.9, "f1": 0.8}}, figs / "summary.png")
    p2 = plots.confusion_matrix(np.eye(3, dtype=int) * 5, ["<b>&", "x|y", "z"], inside / "cm.png", "cm")
    sections = [
        Section("Overview", "First paragraph with <tags> & ampersands.\n\nSecond paragraph."),
        Section("Metrics", tables=[Table(["class", "accuracy", "n"], [["<b>&", 0.941234, 17],
                                                                      ["x|y", 0.5, 3]], caption="Per class")],
                images=[p1, p2]),
        Section("Metrics", "duplicate title gets its own anchor"),
    ]
    meta = {"created": "2024-01-01 12:00", "vislab": "0.1.0", "command": "vislab fashion train a=<1>"}
    return out, write_report(out, "Run <report> & more", sections, meta), (p1, p2)


def test_report_html_offline_and_escaped(tmp_path):
    out, (html_path, md_path), images = _report(tmp_path)
    assert html_path == out / "report.html" and md_path == out / "report.md"
    doc = html_path.read_text(encoding="utf-8")
    assert "http://" not in doc and "https://" not in doc
    assert "<script" not in doc.lower()
    assert "<link" not in doc.lower() and "@import" not in doc  # CSS is inline
    assert doc.count("data:image/png;base64,") == len(images)
    # embedded data is the PNG itself
    b64 = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", doc)
    assert base64.b64decode(b64[0]) == images[0].read_bytes()
    assert "&lt;b&gt;&amp;" in doc and "<b>&" not in doc
    assert "Run &lt;report&gt; &amp; more" in doc
    assert "0.9412" in doc and ">0.5<" in doc and ">17<" in doc
    assert "Per class" in doc
    # TOC anchors point at existing ids, unique
    hrefs = re.findall(r'href="#([^"]+)"', doc)
    ids = re.findall(r'id="([^"]+)"', doc)
    assert len(hrefs) == 3 and len(set(hrefs)) == 3 and set(hrefs) <= set(ids)
    # meta table
    assert "vislab fashion train a=&lt;1&gt;" in doc and "2024-01-01 12:00" in doc
    assert doc.count("<p>") >= 2  # paragraphs split on blank line


def test_report_markdown(tmp_path):
    out, (html_path, md_path), (p_outside, p_inside) = _report(tmp_path)
    md = md_path.read_text(encoding="utf-8")
    assert "| class | accuracy | n |" in md
    assert re.search(r"^\|\s*-{3,}\s*\|", md, re.M) or re.search(r"^\|-{3,}", md, re.M)
    assert "0.9412" in md and "x\\|y" in md
    # every row of the table has the same number of unescaped pipes
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and ("0.9412" in ln or "| 0.5 |" in ln)]
    assert len(rows) == 2 and all(len(re.findall(r"(?<!\\)\|", r)) == 4 for r in rows)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 2
    for link in links:
        assert not Path(link).is_absolute() and "://" not in link
        assert (out / link).is_file()
    assert "figures/summary.png" in links and "plots/cm.png" in links
    assert (out / "figures" / "summary.png").read_bytes() == p_outside.read_bytes()
    assert "](#metrics)" in md and "](#metrics-1)" in md  # TOC with GitHub-style anchors


def test_markdown_text_escapes_html_and_line_start_quotes_only():
    from vislab.core.report import _md_text
    assert _md_text("loss > 0 and <b>") == "loss > 0 and &lt;b>"  # mid-line ">" stays readable
    assert _md_text("x\n> not a quote\n  > nor this") == "x\n\\> not a quote\n  \\> nor this"


def test_histogram_legend_names_its_unit(tmp_path, monkeypatch):
    from matplotlib.axes import Axes
    labels, real = [], Axes.hist
    monkeypatch.setattr(Axes, "hist", lambda self, *a, **k: labels.append(k.get("label")) or real(self, *a, **k))
    path = plots.histograms({"train": np.zeros((3, 4)), "test": np.ones(5)}, tmp_path / "h.png", "t", "x",
                            unit="pixels")
    assert path.is_file() and labels == ["train (n=12 pixels)", "test (n=5 pixels)"]


def test_curves_mark_the_best_epoch_and_draw_short_runs_per_step(tmp_path, monkeypatch):
    figs = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figs.append(fig) or Path(path))
    hist = [{"epoch": e, "step": 10 * e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "val_accuracy": 0.5 + 0.1 * e,
             "train_accuracy": 0.45 + 0.1 * e, "val_f1": 0.4 + 0.1 * e, "train_f1": 0.3} for e in range(1, 5)]
    plots.training_curves(hist, tmp_path / "c.png", best_epoch=3)
    ax = figs[-1].axes[0]
    assert ax.get_xlabel() == "epoch"
    marks = [ln for ln in ax.lines if ln.get_linestyle() == "--" and "best" in ln.get_label()]
    assert len(marks) == 1 and marks[0].get_xdata()[0] == 3 and marks[0].get_label() == "best (epoch 3)"
    # one epoch of 12 steps: drawn against the step, from 0, with the per-step loss
    steps = [{"step": s, "loss": 2.0 - 0.1 * s} for s in range(1, 13)]
    plots.training_curves([dict(hist[0], step=12)], tmp_path / "one.png", best_epoch=1, steps=steps)
    for ax in figs[-1].axes:
        lo, hi = ax.get_xlim()
        assert ax.get_xlabel() == "optimizer step" and lo == 0 and 12 <= hi < 13  # never a 0.96-1.04 axis
    assert any(len(ln.get_xdata()) == 12 for ln in figs[-1].axes[0].lines)
    plots.training_curves([dict(hist[0])], tmp_path / "nosteps.png")  # one epoch, no step log: 0.5-1.5
    assert figs[-1].axes[1].get_xlim() == (0.5, 1.5)


def test_confusion_shows_rates_and_counts(tmp_path, monkeypatch):
    figs = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figs.append(fig) or Path(path))
    cm = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 5]])
    plots.confusion_matrix(cm, ["a", "b", "c"], tmp_path / "cm.png", "task")
    texts = [t.get_text() for t in figs[-1].axes[0].texts]
    assert "0.80\n(8)" in texts and "0.20\n(2)" in texts and "1.00\n(5)" in texts and texts.count("0") == 4


def test_report_figures_sit_in_a_grid_with_captions(tmp_path):
    from vislab.core.report import Figure
    p = plots.summary_bars({"a": {"accuracy": 0.9, "f1": 0.8}}, tmp_path / "s.png")
    html, md = write_report(tmp_path / "r", "t", [
        Section("Card", "first", card=True, notes=["season: at its baseline"]),
        Section("Details", "later", tables=[Table(["a"], [[1.5]])]),
        Section("Figures", images=[Figure(p, "Average accuracy and F1 per run"), Figure(p, "Same, small", "small"),
                                   Figure(p, "Again, small", "small"), p])])
    doc = html.read_text()
    assert doc.index("<h2>Card</h2>") < doc.index('<nav class="toc">') < doc.index("<h2>Details</h2>")
    assert '<li>season: at its baseline</li>' in doc
    assert doc.count('<div class="figs">') == 2 and doc.count('<div class="figs small">') == 1
    assert "<figcaption>Average accuracy and F1 per run</figcaption>" in doc
    assert "<figcaption>s.png</figcaption>" in doc  # a bare path still gets its file name
    text = md.read_text()
    assert text.index("## Card") < text.index("## Contents") and "*Average accuracy and F1 per run*" in text


def test_time_curves_draw_one_line_per_setting_and_the_test_stars(tmp_path):
    curves = {"a": {"seconds": [60, 120, 180], "values": [80.0, 84.0, 85.0], "final": (180, 84.5)},
              "b": {"seconds": [90, 180], "values": [81.0, 86.0]}, "empty": {"seconds": [], "values": []}}
    path = plots.time_curves(curves, tmp_path / "t.png")
    assert_png(path)
    px = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)

    def share(hex_colour):
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        return float((np.abs(px - rgb).sum(1) < 30).mean())
    assert share(plots.COLORS[0]) > 1e-3 and share(plots.COLORS[1]) > 1e-3 and share(plots.COLORS[2]) == 0
    assert_png(plots.time_curves({"e": {"seconds": [], "values": []}}, tmp_path / "none.png"))


def test_time_accuracy_benchmark_reads_cumulative_seconds_and_the_test_score(tmp_path):
    import importlib.util
    import json
    spec = importlib.util.spec_from_file_location("time_accuracy",
                                                  Path(__file__).parents[2] / "benchmarks" / "time_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch,train_seconds,val_accuracy\n1,100.5,0.8\n2,99.5,0.85\n")
    c = mod.curve(run)
    assert c["seconds"] == [100.5, 200.0] and c["values"] == pytest.approx([80.0, 85.0]) and "final" not in c
    (run / "metrics.json").write_text(json.dumps({"split": "test", "tta": True,
                                                  "metrics": {"average": {"accuracy": 0.8421}}}))
    c = mod.curve(run)
    assert c["final"] == pytest.approx((200.0, 84.21)) and c["tta"] is True  # no val_loss logged: the last epoch
    # the star sits at the time of the tested checkpoint: the best epoch by the run's monitor, not the last
    (run / "history.csv").write_text("epoch,train_seconds,val_accuracy,val_loss\n1,100,0.8,0.9\n2,100,0.86,0.7\n"
                                     "3,100,0.85,0.6\n")
    (run / "config.yaml").write_text("train:\n  monitor: val_accuracy\n  monitor_mode: null\n")
    assert mod.curve(run)["final"] == pytest.approx((200.0, 84.21))
    (run / "config.yaml").write_text("train:\n  monitor: val_loss\n")
    assert mod.curve(run)["final"] == pytest.approx((300.0, 84.21))
