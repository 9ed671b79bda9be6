"""The summary card's warnings in plain words: each fires on the case it names, and a clean run has none."""
from __future__ import annotations

import math

from vislab.core.summary import best_epoch, best_epoch_text, run_warnings, summary_card

HIST = [{"epoch": 1, "step": 10, "val_loss": 1.0}, {"epoch": 2, "step": 20, "val_loss": 0.8},
        {"epoch": 3, "step": 30, "val_loss": 0.9}]
GOOD = {"gender": {"accuracy": 0.9, "f1": 0.8}}
PER_CLASS = {"gender": {"Men": {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 50},
                        "Boys": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 7},
                        "Girls": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
                        "macro avg": {"precision": 0.3, "recall": 0.3, "f1": 0.3, "support": 57}}}


def test_a_clean_run_has_no_warning():
    assert run_warnings(HIST, "val_loss", 3, GOOD, {"gender": 0.5}) == []
    card = summary_card(HIST, "val_loss", None, 3, GOOD, {"gender": 0.5})
    assert card.card and card.notes == [] and "No warnings" in card.text


def test_each_warning_names_its_case():
    notes = run_warnings(HIST, "val_loss", 3, {"gender": {"accuracy": 0.503}}, {"gender": 0.5})
    assert len(notes) == 1 and notes[0].startswith("gender: accuracy 50.3% is at or under its majority baseline (50.0%")
    notes = run_warnings(HIST, "val_loss", 3, GOOD, {"gender": 0.5}, PER_CLASS)
    assert notes == ["gender: 1 class never predicted right (recall 0): Boys (7 images)."]  # Girls: no image
    notes = run_warnings(HIST, "val_loss", 8, GOOD, {"gender": 0.5}, max_steps=30)
    assert notes == ["Training stopped after epoch 3 of 8 planned (--max-steps 30), at step 30."]
    nan = HIST + [{"epoch": 4, "step": 40, "val_loss": math.nan}]
    assert any("NaN or infinite values in: val_loss" in n for n in run_warnings(nan, "val_loss", 4, GOOD, {}))
    rising = [{"epoch": 1, "val_auc": 0.8}, {"epoch": 2, "val_auc": 0.9}]
    assert run_warnings(rising, "val_auc", 2, {}, {}, mode="max") == [
        "val auc was still improving at the last epoch: more epochs may help."]
    assert run_warnings(rising, "val_auc", 2, {}, {}, mode="min") == []  # lower is better: it got worse


def test_best_epoch_follows_the_monitor_and_its_mode():
    assert best_epoch(HIST, "val_loss", None) == 2
    assert best_epoch(HIST, "val_loss", "max") == 1
    assert best_epoch_text(HIST, "val_loss", None) == ("Best epoch 2 of 3: lowest val loss (0.8000); its checkpoint "
                                                       "is the one evaluated.")
    assert "no best epoch" in best_epoch_text([{"epoch": 1, "val_loss": math.nan}], "val_loss", None)
