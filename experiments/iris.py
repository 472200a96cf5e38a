"""Iris: the lecture's multi-class demo, cell by cell, with a softmax network.

Slides: the multi-class demonstration (_keras-iris-classification-demo.qmd). Four
measurements per flower, 112 training and 38 test rows, Dense(30, relu) and a 3-way
softmax, Adam and sparse categorical cross-entropy: two 5-epoch fits, a 500-epoch fit with
validation_split=0.25, early stopping on val_accuracy, softmax by hand, predictions turned
into class names, and the one-hot run. Every number the lecture prints is set beside this
run's (kclf.demos.published).

--start lecture (default): the lecture's own seeding; TensorFlow reprints the lecture.
--start tensorflow: TensorFlow's initial weights and batch order on every backend, traced.
--start numpy: kclf's NumPy-seeded deterministic runs (kclf.demos.iris_numpy).
"""

NAME = "iris"
DESCRIPTION = "Iris, 3 classes: the lecture's cells (Dense(30, relu) + softmax, Adam, early stopping, one-hot); every printed number vs the lecture"
SLIDE = "Demonstration: multi-class classification (iris)"
START_MODES = ("lecture", "tensorflow", "numpy")
POSITION = 10  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = {"numpy": "iris", "tensorflow": "lecture-start", "lecture": "own-draws"}


def run(ctx):
    from kclf.demos import start

    if start.mode() == "numpy":
        from kclf.demos import iris_numpy

        return {"start": "numpy", **iris_numpy.run(ctx)}
    from kclf.demos import iris
    from kclf.demos.run import run as run_demo

    return run_demo(ctx, "iris", None, iris)
