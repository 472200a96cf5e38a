"""Iris: the lecture's multi-class demo, cell by cell, with a softmax network.

Slides: the multi-class demonstration (_keras-iris-classification-demo.qmd). Four
measurements per flower, 112 training and 38 test rows, Dense(30, relu) and a 3-way
softmax, Adam and sparse categorical cross-entropy: two 5-epoch fits, a 500-epoch fit with
validation_split=0.25, early stopping on val_accuracy, softmax by hand, predictions turned
into class names (and, in 2025, the one-hot run). Every number the edition prints is set
beside this run's (kclf.demos.published).

--edition 2026 (default; runs on torch unless --backend): the course's current edition; on
torch, torch's generator is first put where the lecture's run had it after the stroke demo.
--edition 2025: the TensorFlow edition (runs on tensorflow unless --backend).
--start lecture (default): the edition's own seeding; its own backend reprints it.
--start torch-2026 / tensorflow-2025: that run's initial weights and batch order on every
backend, traced. --start numpy: kclf's NumPy-seeded deterministic runs (kclf.demos.iris_numpy).
"""

NAME = "iris"
DESCRIPTION = "Iris, 3 classes: the edition's cells (Dense(30, relu) + softmax, Adam, early stopping; 2025: one-hot); every printed number vs the edition's"
SLIDE = "Demonstration: multi-class classification (iris)"
START_MODES = ("lecture", "torch-2026", "tensorflow-2025", "numpy")
EDITIONS = ("2026", "2025")
POSITION = 20  # in the 2026 lecture's order, after stroke (kclf list, kclf compare)
TOLERANCE = {"numpy": "iris", "torch-2026": "lecture-start", "tensorflow-2025": "lecture-start",
             "lecture": "own-draws"}


def run(ctx):
    if ctx.start == "numpy":
        from kclf.demos import iris_numpy

        return {"start": "numpy", **iris_numpy.run(ctx)}
    from kclf.demos.run import run as run_demo

    return run_demo(ctx, "iris", None)
