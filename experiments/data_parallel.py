"""Data parallelism: the same fit on 1 and on N devices, traced step by step.

Not a slide of its own: what a practitioner checks before trusting a multi-device run
("does my model train the same on N devices?"). The iris-size classifier (4 → Dense(30,
relu) → 3-way softmax) and a logistic regression (setosa or not) start from the same
NumPy-seeded weights and see the same batches of 16 in the same order (shuffle=False,
112 rows: 7 full batches an epoch), once on one device and once data-parallel on N
(``keras.distribution.DataParallel`` on JAX, ``tf.distribute.MirroredStrategy`` on
TensorFlow; set up with ``kclf compare --devices N`` or KCLF_DEVICES=N, kclf.devices).
Each device computes the gradient of its shard of the batch; the optimizer applies their
all-reduced sum. The two traces are compared step by step: weights before and after,
the applied gradient and the batch loss.
"""

import numpy as np
import pandas as pd

from kclf import devices
from kclf.callbacks import TrainingTrace

NAME = "data-parallel"
DESCRIPTION = "The iris classifier and a logistic regression on 1 and on N devices (--devices N): traces agree step by step"
SLIDE = "(none: training on several devices)"
POSITION = 150  # after the lecture's experiments (kclf list, kclf compare)
TOLERANCE = "deterministic"

BATCH_SIZE = 16
EPOCHS = 3
LEARNING_RATE = 0.1
SEED = 0

# 1 vs N devices, same weights and batches: only the summation order of the batch's
# gradient (and loss) changes: per-device partial sums, then the all-reduce. A float32 sum
# of 16 terms reordered moves by a few ulps of its largest term (ulp(1) = 1.2e-7).
# Measured (keras 3.15.1, CPU, 21 steps, every step, both models), max |1 − N|:
#   JAX, 4 devices (DataParallel):            weights 6.0e-8, gradients 6.0e-8, loss 6.0e-8
#   TensorFlow, 2 logical CPUs (Mirrored):    weights 6.0e-8, gradients 6.0e-8, loss 6.0e-8
#   TensorFlow, 4 logical CPUs (--devices 4): agree within the same bound
# rtol = atol = 1e-6 leaves a margin of ~16 over the largest; 21 steps at lr 0.1 do not
# amplify it (the weights' difference stays at the gradients'). Recording one replica's
# gradient and loss instead (the trace before the TensorFlow fix) is 0.30 and 0.70 off here.
ATOL = 1e-6
RTOL = 1e-6
QUANTITIES = ("weights_before", "gradient", "weights_after", "loss")


def models():
    """(label, model-building function, task) for the two models."""
    from kclf.models import dense_classifier, logistic_regression

    def logistic():
        rng = np.random.default_rng(SEED)
        return logistic_regression(4, weights=(rng.normal(0, 0.1, (4, 1)).astype("float32"),
                                               np.zeros(1, "float32")))

    return [("iris classifier", lambda: dense_classifier(4, 3, (30,), seed=SEED), "sparse"),
            ("logistic regression", logistic, "binary")]


def data():
    from kclf.demo_data import iris

    d = iris()
    x = d.X_train.to_numpy("float32")
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x, d.y_train.astype("int32"), (d.y_train == 0).astype("float32")[:, None]


def fit(build, task, x, y, n: int) -> TrainingTrace:
    """Trace one fit on ``n`` devices (1: no distribution)."""
    import keras

    from kclf.models import compile_model

    with devices.data_parallel(n):
        model = build()
        compile_model(model, task, optimizer=keras.optimizers.SGD(LEARNING_RATE))
        trace = TrainingTrace()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[trace])
    return trace


def differences(one: TrainingTrace, many: TrainingTrace) -> dict:
    """Largest |1-device − N-device| per quantity over every step, and the steps counted."""
    out = {"steps": [int(one.steps_recorded), int(many.steps_recorded)]}
    series = {"weights_before": "weights_before", "gradient": "gradients", "weights_after": "weights_after"}
    for quantity, method in series.items():
        worst = 0.0
        for path in one.variable_paths:
            a, b = getattr(one, method)(path), getattr(many, method)(path)
            worst = max(worst, float(np.max(np.abs(a - b))))
        out[quantity] = worst
    out["loss"] = float(np.max(np.abs(one.losses() - many.losses())))
    return out


def agree(one: TrainingTrace, many: TrainingTrace) -> list[str]:
    """The quantities (and steps) where the traces disagree beyond ATOL + RTOL·|x|."""
    bad = []
    if not np.array_equal(one.steps(), many.steps()):
        return [f"steps {one.steps().tolist()} vs {many.steps().tolist()}"]
    series = {"weights_before": "weights_before", "gradient": "gradients", "weights_after": "weights_after"}
    for quantity, method in series.items():
        for path in one.variable_paths:
            a, b = getattr(one, method)(path), getattr(many, method)(path)
            close = np.isclose(b, a, rtol=RTOL, atol=ATOL).reshape(len(a), -1).all(axis=1)
            if not close.all():
                bad.append(f"{quantity} {path} from step {int(one.steps()[~close][0])}")
    close = np.isclose(many.losses(), one.losses(), rtol=RTOL, atol=ATOL)
    if not close.all():
        bad.append(f"loss from step {int(one.steps()[~close][0])}")
    return bad


def run(ctx):
    n = devices.configure()  # TensorFlow: its logical devices, before the first op
    x, y_class, y_binary = data()
    rows, results = [], {"devices": n, "atol": ATOL, "rtol": RTOL}
    for label, build, task in models():
        y = y_class if task == "sparse" else y_binary
        one = fit(build, task, x, y, 1)
        ctx.attach(one, label)
        entry = {"steps": int(one.steps_recorded), "final_loss": float(one.losses()[-1])}
        if n > 1:
            many = fit(build, task, x, y, n)
            ctx.attach(many, f"{label}, {n} devices")
            diff = differences(one, many)
            problems = agree(one, many)
            entry.update({"max_abs_difference": {k: diff[k] for k in QUANTITIES},
                          "steps_on_n_devices": diff["steps"][1], "agree": not problems,
                          "disagreements": problems})
            rows.append({"model": label, "steps (1 / N)": f"{diff['steps'][0]} / {diff['steps'][1]}",
                         **{k: diff[k] for k in QUANTITIES}, "agree": not problems})
        results[label] = entry
    if n > 1:
        ctx.table(pd.DataFrame(rows).set_index("model"),
                  f"max |1 device − {n} devices| over every step (tolerance {ATOL:g} + {RTOL:g}·|x|)",
                  float_format=".2e")
    else:
        ctx.print("one device only: run with kclf compare --devices N (or KCLF_DEVICES=N) to compare")
    return results
