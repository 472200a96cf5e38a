"""Stroke prediction: the lecture's binary demo, cell by cell, with a sigmoid network.

Slides: the binary demonstration (_stroke-prediction.qmd), on Kaggle's "Stroke Prediction
Dataset" (about 5% of 5110 patients had a stroke). kclf does not ship the file: give it
with ``--data PATH`` or KCLF_STROKE_CSV; without it a synthetic stand-in in the same schema
is used and every header says so. The cells: missing values, the splits, value counts, the
column transformer, the unseen "Other" gender, model.summary(), the plain and the
class-weighted fits (up to 1,000 epochs, early stopping on val_pr_auc), their evaluations,
scikit-learn's ROC and precision-recall displays, and confusion matrices at > 0.5 and > 0.3.
Every number the lecture prints is set beside this run's (kclf.demos.published).

2026 (the default, on torch unless --backend): the preprocessing lecture's Example 3 first
(its splits, value counts and column transformer, the CSV files it writes, which the demo
reads), then two 5-epoch fits, a 500-epoch fit and early stopping on val_accuracy before the
PR-AUC fits. 2025 (--edition 2025, on tensorflow unless --backend): as described above.

--start lecture (default): the edition's own seeding; its own backend reprints it.
--start torch-2026 / tensorflow-2025: that run's initial weights and batch order on every
backend, traced. --start numpy: kclf's NumPy-seeded deterministic runs (kclf.demos.stroke_numpy).
"""

NAME = "stroke"
DESCRIPTION = "Stroke prediction (Kaggle CSV via --data, else synthetic): preprocessing, Dense(32, 16) + sigmoid, early stopping, class weights; every printed number vs the edition's"
SLIDE = "Demonstration: binary classification (stroke prediction)"
START_MODES = ("lecture", "torch-2026", "tensorflow-2025", "numpy")
EDITIONS = ("2026", "2025")
POSITION = 10  # in the 2026 lecture's order, before iris (kclf list, kclf compare)
TOLERANCE = {"numpy": "stroke", "torch-2026": "lecture-start", "tensorflow-2025": "lecture-start",
             "lecture": "own-draws"}
DATA_VARIABLES = ("KCLF_STROKE_CSV",)  # read by kclf run when --data is not given
DATA_CHECK = "kclf.demo_data:load_stroke_csv"  # checks a --data file before anything runs


def run(ctx):
    if ctx.start == "numpy":
        from kclf.demos import stroke_numpy

        return {"start": "numpy", **stroke_numpy.run(ctx)}
    from kclf.demos.run import run as run_demo

    return run_demo(ctx, "stroke", ctx.data)
