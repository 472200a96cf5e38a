"""Stroke prediction: the lecture's binary demo, cell by cell, with a sigmoid network.

Slides: the binary demonstration (_stroke-prediction.qmd), on Kaggle's "Stroke Prediction
Dataset" (about 5% of 5110 patients had a stroke). kclf does not ship the file: give it
with ``--data PATH`` or KCLF_STROKE_CSV; without it a synthetic stand-in in the same schema
is used and every header says so. The cells: missing values, the splits, value counts, the
column transformer, the unseen "Other" gender, model.summary(), the plain and the
class-weighted fits (up to 1,000 epochs, early stopping on val_pr_auc), their evaluations,
scikit-learn's ROC and precision-recall displays, and confusion matrices at > 0.5 and > 0.3.
Every number the lecture prints is set beside this run's (kclf.demos.published).

--start lecture (default): the lecture's own seeding; TensorFlow reprints the lecture.
--start tensorflow: TensorFlow's initial weights and batch order on every backend, traced.
--start numpy: kclf's NumPy-seeded deterministic runs (kclf.demos.stroke_numpy).
"""

import os
from pathlib import Path

NAME = "stroke"
DESCRIPTION = "Stroke prediction (Kaggle CSV via --data, else synthetic): the lecture's cells, Dense(32, 16) + sigmoid, PR-AUC early stopping, class weights; every printed number vs the lecture"
SLIDE = "Demonstration: binary classification (stroke prediction)"
START_MODES = ("lecture", "tensorflow", "numpy")
POSITION = 20  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = {"numpy": "stroke", "tensorflow": "lecture-start", "lecture": "own-draws"}
DATA_VARIABLES = ("KCLF_DATA", "KCLF_STROKE_CSV")  # KCLF_DATA is what kclf run --data sets
DATA_CHECK = "kclf.demo_data:load_stroke_csv"  # checks a --data file before anything runs


def data_file():
    for variable in DATA_VARIABLES:
        if os.environ.get(variable):
            return Path(os.environ[variable])
    return None


def run(ctx):
    from kclf.demos import start

    if start.mode() == "numpy":
        from kclf.demos import stroke_numpy

        return {"start": "numpy", **stroke_numpy.run(ctx)}
    from kclf.demo_data import load_stroke_csv
    from kclf.demos import stroke
    from kclf.demos.run import run as run_demo

    path = data_file()
    if path is not None:
        load_stroke_csv(path)  # a bad file fails here, in one line, before any training
    return run_demo(ctx, "stroke", path, stroke)
