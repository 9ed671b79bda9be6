"""Deterministic synthetic "fashion product" photos in the Kaggle Fashion Product Images layout.

``generate(root)`` writes ``root/styles.csv`` (the Kaggle columns) and ``root/images/<id>.jpg`` so the
demo can train the multi-task classifier without any download. Article type is drawn as a distinct
silhouette, baseColour fills it, gender shows as scale/cut, season correlates with type/colour and
a knit texture for Winter; usage/year are only correlated through the table.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

GENERATOR_VERSION = 1
COLUMNS = ["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour",
           "season", "year", "usage", "productDisplayName"]

COLOURS = {
    "Black": (30, 30, 32), "White": (245, 245, 240), "Blue": (40, 90, 200), "Navy Blue": (25, 35, 90),
    "Red": (200, 30, 40), "Green": (40, 140, 60), "Grey": (128, 128, 128), "Brown": (120, 75, 40),
    "Pink": (240, 140, 180), "Yellow": (240, 210, 40), "Purple": (120, 50, 150), "Beige": (215, 195, 150),
    "Silver": (190, 192, 198),
}
DARK, LIGHT = {"Black", "Navy Blue", "Brown", "Grey"}, {"White", "Yellow", "Pink", "Beige"}


def _p(spec: str) -> dict[str, float]:
    """'Black 3, Navy Blue 1' -> normalised {'Black': .75, 'Navy Blue': .25}."""
    items = [s.strip().rsplit(" ", 1) for s in spec.split(",")]
    total = sum(float(w) for _, w in items)
    return {k: float(w) / total for k, w in items}


_TOP = "Black 12, White 9, Blue 10, Navy Blue 8, Red 9, Green 8, Grey 8, Pink 7, Yellow 7, Purple 7, Brown 3, Beige 4"
_FEM = "Black 12, White 6, Blue 8, Navy Blue 5, Red 12, Green 6, Pink 14, Yellow 8, Purple 10, Beige 6, Grey 3"
_SHOE = "Black 30, White 18, Brown 18, Grey 10, Blue 10, Navy Blue 6, Red 5, Beige 5"
_ALLG = "Men 45, Women 40, Boys 6, Girls 6, Unisex 3"
_ALLS = "Summer 35, Fall 28, Winter 20, Spring 17"

#: One entry per articleType: hierarchy, frequency weight and attribute distributions.
CATALOG: list[dict] = [
    dict(articleType=a, masterCategory=m, subCategory=s, weight=w, colours=_p(c), gender=_p(g),
         season=_p(se), usage=_p(u), suffixes=x)
    for a, m, s, w, c, g, se, u, x in [
        ("Tshirts", "Apparel", "Topwear", 16, _TOP, "Men 60, Women 25, Boys 8, Girls 5, Unisex 2",
         "Summer 45, Fall 20, Winter 10, Spring 25", "Casual 75, Sports 25", []),
        ("Shirts", "Apparel", "Topwear", 11,
         "White 20, Blue 18, Navy Blue 10, Black 12, Grey 10, Pink 6, Green 6, Beige 6, Purple 5, Red 5, Brown 4",
         "Men 80, Women 12, Boys 8", "Summer 25, Fall 35, Winter 25, Spring 15", "Formal 55, Casual 45",
         ["Slim Fit", "Regular Fit"]),
        ("Tops", "Apparel", "Topwear", 8, _FEM, "Women 90, Girls 10", "Summer 50, Fall 20, Winter 10, Spring 20",
         "Casual 90, Sports 10", []),
        ("Kurtas", "Apparel", "Topwear", 6,
         "Red 14, Green 12, Yellow 14, Purple 10, White 12, Pink 10, Blue 8, Beige 10, Navy Blue 6, Black 6",
         "Men 40, Women 55, Girls 5", _ALLS, "Ethnic 95, Casual 5", []),
        ("Jeans", "Apparel", "Bottomwear", 8, "Blue 50, Navy Blue 20, Black 18, Grey 12",
         "Men 60, Women 32, Boys 4, Girls 4", "Summer 15, Fall 40, Winter 35, Spring 10", "Casual 100",
         ["Skinny Fit", "Straight Fit"]),
        ("Trousers", "Apparel", "Bottomwear", 6, "Black 28, Grey 22, Navy Blue 18, Beige 22, Brown 10",
         "Men 70, Women 28, Boys 2", "Summer 20, Fall 35, Winter 30, Spring 15", "Formal 60, Casual 40", []),
        ("Shorts", "Apparel", "Bottomwear", 5, "Blue 20, Black 15, Grey 15, Navy Blue 12, Beige 14, Green 12, Red 12",
         _ALLG, "Summer 75, Spring 15, Fall 10", "Casual 60, Sports 40", []),
        ("Dresses", "Apparel", "Dress", 5, _FEM, "Women 88, Girls 12", "Summer 45, Spring 25, Fall 20, Winter 10",
         "Casual 75, Formal 25", []),
        ("Casual Shoes", "Footwear", "Shoes", 9, _SHOE, "Men 65, Women 25, Boys 5, Girls 3, Unisex 2", _ALLS,
         "Casual 100", []),
        ("Sports Shoes", "Footwear", "Shoes", 7, "Black 22, White 25, Blue 18, Grey 15, Red 10, Navy Blue 10",
         "Men 60, Women 25, Boys 8, Unisex 7", _ALLS, "Sports 100", []),
        ("Heels", "Footwear", "Shoes", 4, "Black 30, Beige 20, Red 15, Brown 12, Pink 10, White 8, Silver 5",
         "Women 95, Girls 5", _ALLS, "Casual 50, Formal 50", []),
        ("Sandals", "Footwear", "Sandal", 4, "Brown 35, Black 30, Beige 15, Grey 10, Silver 5, Blue 5", _ALLG,
         "Summer 70, Spring 20, Fall 10", "Casual 100", []),
        ("Flip Flops", "Footwear", "Sandal", 3.5, "Black 20, Blue 20, Red 15, Yellow 15, Green 10, Pink 10, White 10",
         "Men 50, Women 35, Unisex 10, Boys 5", "Summer 85, Spring 15", "Casual 100", []),
        ("Handbags", "Accessories", "Bags", 5,
         "Black 25, Brown 25, Beige 15, Red 10, Pink 8, White 7, Purple 5, Navy Blue 5, Silver 6", "Women 92, Unisex 8",
         _ALLS, "Casual 70, Formal 30", ["Leather", "Tote"]),
        ("Backpacks", "Accessories", "Bags", 4, "Black 30, Blue 20, Grey 15, Navy Blue 10, Red 10, Green 8, Purple 7",
         "Unisex 75, Men 15, Boys 5, Girls 5", _ALLS, "Casual 70, Sports 30", ["Laptop Bag"]),
        ("Watches", "Accessories", "Watches", 6, "Black 28, Silver 36, Brown 20, White 8, Blue 8",
         "Men 55, Women 30, Unisex 15", "Winter 35, Fall 30, Summer 20, Spring 15", "Casual 60, Formal 30, Sports 10",
         ["Leather Strap", "Metal Strap"]),
        ("Belts", "Accessories", "Belts", 3, "Black 45, Brown 40, Beige 5, Navy Blue 5, Grey 5",
         "Men 80, Women 15, Unisex 5", _ALLS, "Casual 60, Formal 40", ["Leather"]),
    ]
]

# Silhouettes in unit coordinates (x right, y down): (kind, role, points, outline width as fraction of width).
# role: body -> filled with baseColour (mask); dark/light -> shade of it; white/metal/stitch -> fixed colours.
L, E, R, RR, A, PO = "line", "ellipse", "rect", "rrect", "arc", "poly"
SHAPES = {
    "Tshirts": [(PO, "body", [(.40, .12), (.27, .16), (.10, .30), (.18, .40), (.29, .33), (.29, .84), (.71, .84),
                              (.71, .33), (.82, .40), (.90, .30), (.73, .16), (.60, .12), (.50, .18)], 0),
                (L, "dark", [(.40, .12), (.50, .18), (.60, .12)], .03)],
    "Shirts": [(PO, "body", [(.40, .10), (.27, .14), (.14, .30), (.08, .74), (.17, .76), (.24, .42), (.29, .36),
                             (.29, .86), (.71, .86), (.71, .36), (.76, .42), (.83, .76), (.92, .74), (.86, .30),
                             (.73, .14), (.60, .10)], 0),
               (PO, "light", [(.40, .10), (.50, .20), (.44, .23), (.36, .13)], 0),
               (PO, "light", [(.60, .10), (.50, .20), (.56, .23), (.64, .13)], 0),
               (L, "dark", [(.50, .20), (.50, .86)], .02), (R, "dark", [(.34, .30), (.44, .40)], .02)],
    "Tops": [(PO, "body", [(.36, .14), (.42, .14), (.50, .22), (.58, .14), (.64, .14), (.66, .36), (.76, .74),
                           (.24, .74), (.34, .36)], 0),
             (L, "body", [(.38, .15), (.38, .06)], .03), (L, "body", [(.62, .15), (.62, .06)], .03),
             (L, "light", [(.34, .40), (.66, .40)], .03)],
    "Kurtas": [(PO, "body", [(.42, .06), (.30, .10), (.16, .24), (.12, .60), (.20, .62), (.25, .32), (.31, .28),
                             (.31, .94), (.69, .94), (.69, .28), (.75, .32), (.80, .62), (.88, .60), (.84, .24),
                             (.70, .10), (.58, .06), (.50, .12)], 0),
               (L, "dark", [(.50, .12), (.50, .32)], .03), (L, "stitch", [(.31, .88), (.69, .88)], .04)],
    "Jeans": [(PO, "body", [(.30, .08), (.70, .08), (.74, .92), (.56, .92), (.50, .36), (.44, .92), (.26, .92)], 0),
              (L, "dark", [(.30, .11), (.70, .11)], .04), (L, "stitch", [(.33, .15), (.41, .23)], .02),
              (L, "stitch", [(.67, .15), (.59, .23)], .02), (L, "stitch", [(.50, .14), (.50, .30)], .02)],
    "Trousers": [(PO, "body", [(.28, .08), (.72, .08), (.72, .92), (.54, .92), (.50, .30), (.46, .92), (.28, .92)], 0),
                 (L, "dark", [(.28, .11), (.72, .11)], .04), (L, "dark", [(.37, .20), (.37, .92)], .015),
                 (L, "dark", [(.63, .20), (.63, .92)], .015)],
    "Shorts": [(PO, "body", [(.26, .22), (.74, .22), (.78, .62), (.55, .64), (.50, .44), (.45, .64), (.22, .62)], 0),
               (L, "dark", [(.26, .25), (.74, .25)], .04), (L, "light", [(.23, .59), (.45, .61)], .02),
               (L, "light", [(.55, .61), (.77, .59)], .02)],
    "Dresses": [(PO, "body", [(.38, .08), (.50, .14), (.62, .08), (.64, .36), (.80, .90), (.20, .90), (.36, .36)], 0),
                (L, "dark", [(.36, .36), (.64, .36)], .04)],
    "Casual Shoes": [(PO, "body", [(.08, .56), (.12, .44), (.26, .40), (.44, .42), (.62, .52), (.86, .56), (.92, .64),
                                   (.08, .64)], 0),
                     (R, "white", [(.06, .63), (.94, .69)], 0), (L, "dark", [(.44, .45), (.50, .50)], .02),
                     (L, "dark", [(.50, .47), (.56, .52)], .02)],
    "Sports Shoes": [(PO, "body", [(.08, .60), (.10, .36), (.24, .32), (.40, .36), (.60, .48), (.86, .54), (.93, .64),
                                   (.08, .64)], 0),
                     (R, "white", [(.06, .63), (.95, .74)], 0),
                     (L, "light", [(.20, .56), (.50, .46), (.75, .54)], .05)],
    "Heels": [(PO, "body", [(.14, .36), (.26, .38), (.50, .56), (.86, .60), (.92, .67), (.60, .66), (.28, .52),
                            (.22, .52)], 0),
              (PO, "body", [(.16, .46), (.25, .50), (.22, .80), (.19, .80)], 0),
              (L, "dark", [(.28, .52), (.60, .66), (.92, .67)], .02)],
    "Sandals": [(PO, "body", [(.08, .64), (.92, .62), (.93, .68), (.08, .70)], 0),
                (L, "body", [(.30, .64), (.38, .46), (.46, .64)], .05),
                (L, "body", [(.55, .62), (.65, .48), (.78, .61)], .05),
                (L, "body", [(.14, .64), (.18, .44), (.32, .46)], .04), (L, "dark", [(.08, .70), (.93, .68)], .03)],
    "Flip Flops": [(E, "body", [(.32, .08), (.68, .92)], 0), (L, "dark", [(.36, .52), (.50, .26), (.64, .52)], .05)],
    "Handbags": [(PO, "body", [(.22, .42), (.78, .42), (.88, .86), (.12, .86)], 0),
                 (A, "body", [(.30, .18), (.70, .62)], .05),
                 (L, "dark", [(.22, .42), (.50, .56), (.78, .42)], .03), (R, "metal", [(.46, .53), (.54, .59)], 0)],
    "Backpacks": [(RR, "body", [(.20, .14), (.80, .90)], 0), (A, "body", [(.40, .06), (.60, .22)], .04),
                  (RR, "dark", [(.28, .52), (.72, .84)], .03), (L, "light", [(.26, .30), (.74, .30)], .02)],
    "Watches": [(R, "body", [(.41, .04), (.59, .96)], 0), (E, "body", [(.28, .32), (.72, .68)], 0),
                (E, "light", [(.33, .36), (.67, .64)], 0), (L, "dark", [(.50, .40), (.50, .50), (.59, .50)], .03)],
    "Belts": [(R, "body", [(.04, .45), (.96, .55)], 0), (R, "metal", [(.10, .40), (.26, .60)], .04),
              (E, "dark", [(.68, .48), (.72, .52)], 0), (E, "dark", [(.80, .48), (.84, .52)], 0)],
}
assert set(SHAPES) == {c["articleType"] for c in CATALOG}


def default_root() -> Path:
    """~/.cache/vislab/synthetic, or $VISLAB_CACHE/synthetic."""
    base = os.environ.get("VISLAB_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "vislab") / "synthetic"


def _choice(rng: np.random.Generator, dist: dict[str, float]) -> str:
    keys = list(dist)
    return keys[int(rng.choice(len(keys), p=np.array([dist[k] for k in keys])))]


def _sample_rows(n: int, rng: np.random.Generator) -> list[dict]:
    w = np.array([c["weight"] for c in CATALOG], float)
    years, year_p = np.arange(2010, 2018), np.array([8, 20, 22, 15, 10, 10, 8, 7]) / 100
    rows = []
    for i, t in enumerate(rng.choice(len(CATALOG), size=n, p=w / w.sum())):
        c = CATALOG[t]
        colour, gender = _choice(rng, c["colours"]), _choice(rng, c["gender"])
        season = {k: v * (1.5 if (colour in DARK and k in ("Fall", "Winter"))
                          or (colour in LIGHT and k in ("Summer", "Spring")) else 1)
                  for k, v in c["season"].items()}
        total = sum(season.values())
        season = _choice(rng, {k: v / total for k, v in season.items()})
        name = f"Vislab {gender} {colour} {c['articleType']}"
        if c["suffixes"] and rng.random() < 0.3:
            name += ", " + c["suffixes"][int(rng.integers(len(c["suffixes"])))]
        rows.append(dict(id=10000 + i, gender=gender, masterCategory=c["masterCategory"], subCategory=c["subCategory"],
                         articleType=c["articleType"], baseColour=colour, season=season,
                         year=int(rng.choice(years, p=year_p)), usage=_choice(rng, c["usage"]),
                         productDisplayName=name))
    return rows


def _render(row: dict, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    h, w = size
    kid = row["gender"] in ("Boys", "Girls")
    s = rng.uniform(0.9, 1.1) * (0.8 if kid else 1.0)
    sx = s * {"Men": 1.06, "Women": 0.94}.get(row["gender"], 1.0)
    dx, dy = rng.uniform(-0.06, 0.06, 2)

    def tf(pts):
        return [((0.5 + (x - 0.5) * sx + dx) * w, (0.5 + (y - 0.5) * s + dy) * h) for x, y in pts]

    base = np.clip(np.array(COLOURS[row["baseColour"]], float) * rng.uniform(0.88, 1.08) + rng.normal(0, 10, 3), 0, 255)
    bg = tuple(int(v) for v in 255 - rng.uniform(0, 18) - rng.uniform(0, 8, 3))
    fixed = {"white": (214, 214, 208), "metal": (200, 196, 170), "stitch": (215, 165, 70),
             "dark": tuple(int(v) for v in base * 0.55), "light": tuple(int(v) for v in base * 0.4 + 150)}

    def draw_prim(d, kind, pts, width, fill):
        xy, px = tf(pts), max(1, round(width * w * s)) if width else 0
        if kind == L:
            d.line(xy, fill=fill, width=px, joint="curve")
        elif kind == A:
            d.arc(xy, 180, 360, fill=fill, width=px)
        elif kind == PO:
            d.polygon(xy, fill=None if px else fill, outline=fill if px else None, width=px or 1)
        elif kind == RR:
            d.rounded_rectangle(xy, radius=0.12 * w * s, fill=None if px else fill, outline=fill if px else None,
                                width=px or 1)
        else:
            getattr(d, "ellipse" if kind == E else "rectangle")(xy, fill=None if px else fill,
                                                                outline=fill if px else None, width=px or 1)

    prims = SHAPES[row["articleType"]]
    mask = Image.new("L", (w, h), 0)
    md = ImageDraw.Draw(mask)
    for kind, role, pts, width in prims:
        if role == "body":
            draw_prim(md, kind, pts, width, 255)
    m = np.asarray(mask, float)[..., None] / 255
    edge = np.asarray(mask.filter(ImageFilter.MaxFilter(3)), float)[..., None] / 255 - m
    shade = np.linspace(1.08, 0.86, w)[None, :, None] * np.ones((h, 1, 1))
    if row["season"] == "Winter":  # subtle knit stripes
        shade = shade * np.where((np.arange(h) // 2) % 2, 0.85, 1.0)[:, None, None]
    garment = np.clip(base * shade, 0, 255)
    img = np.asarray(Image.new("RGB", (w, h), bg), float) * (1 - m) + garment * m
    img = img * (1 - 0.35 * edge)  # soft outline so white items stay visible
    im = Image.fromarray(img.astype(np.uint8))
    d = ImageDraw.Draw(im)
    for kind, role, pts, width in prims:
        if role != "body":
            draw_prim(d, kind, pts, width, fixed[role])
    im = im.rotate(rng.uniform(-6, 6), resample=Image.BILINEAR, fillcolor=bg)
    arr = np.asarray(im, float) + rng.normal(0, 3, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def generate(root: str | Path, n: int = 3000, seed: int = 0, size: tuple[int, int] = (80, 60)) -> Path:
    """Write n products under root (size = (height, width)); return root as Path. Idempotent: if root/styles.csv exists
    and root/.synthetic.json records the same (n, seed, size, GENERATOR_VERSION), do nothing and return."""
    root = Path(root)
    meta = {"n": int(n), "seed": int(seed), "size": [int(size[0]), int(size[1])], "version": GENERATOR_VERSION}
    marker, csv = root / ".synthetic.json", root / "styles.csv"
    if csv.exists() and marker.exists():
        try:
            if json.loads(marker.read_text()) == meta:
                return root
        except (OSError, ValueError):
            pass
    marker.unlink(missing_ok=True)  # invalidate before touching anything
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = _sample_rows(n, np.random.default_rng(seed))
    for row in rows:
        rng = np.random.default_rng([seed, row["id"]])
        _render(row, meta["size"], rng).save(root / "images" / f"{row['id']}.jpg", quality=90)
    tmp = root / "styles.csv.tmp"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp, index=False)
    os.replace(tmp, csv)
    marker.write_text(json.dumps(meta))  # written last: marks a complete generation
    return root
