"""The lecture's two demos in the document's order, in one run: what the edition printed.

Slides: the binary and the multi-class demonstrations, as one notebook runs them. The 2026
edition (default, on torch) runs stroke, then iris, in one process under one preamble: on
torch every shuffled epoch draws from torch's global generator, so the iris numbers depend
on the 706 stroke epochs before them (iris alone would evaluate its 500-epoch model to
0.0844, not the lecture's 0.0864; ``kclf run iris`` restores the generator instead). The
2025 edition (TensorFlow) runs iris, then stroke, each under the lecture's preamble, as kclf
reproduces it demo by demo. Stroke reads the Kaggle CSV (--data or KCLF_STROKE_CSV); without
it, the synthetic stand-in, and the stroke and iris numbers cannot be the lecture's.
"""

NAME = "lecture"
DESCRIPTION = "Both demos in the lecture's order in one process (2026: stroke, then iris, on torch); every printed number vs the edition's"
SLIDE = "Demonstrations: binary (stroke) and multi-class (iris) classification, in order"
START_MODES = ("lecture", "torch-2026", "tensorflow-2025")
EDITIONS = ("2026", "2025")
POSITION = 5  # the demos open the lecture (kclf list)
IN_ALL = False  # kclf compare all runs stroke and iris on their own instead
TOLERANCE = {"torch-2026": "lecture-start", "tensorflow-2025": "lecture-start",
             "lecture": "own-draws"}
DATA_VARIABLES = ("KCLF_STROKE_CSV",)  # read by kclf run when --data is not given
DATA_CHECK = "kclf.demo_data:load_stroke_csv"  # checks a --data file before anything runs


def run(ctx):
    from kclf.demos.run import lecture

    return lecture(ctx, ctx.data)
