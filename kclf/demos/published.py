"""Every number the lecture's demos print, as published (keras 3.8.0, tensorflow 2.18.0),
and the table that sets each beside this run's value.

Each entry is (path into the demo's ``values`` dict, what the lecture cell shows, value).
A number agrees when |ours − lecture| ≤ 1e-6 · |lecture| (integers, strings and rounded
outputs exactly as printed); the lecture's own cells on this machine's TensorFlow
(keras 3.15.1, tensorflow-cpu 2.21) agree with every entry, the largest difference being
1.6e-7 relative (a loss in its 8th digit).
"""

from __future__ import annotations

import numpy as np

RTOL = 1e-6

IRIS = (
    ("fit_5_epochs/loss", "model.fit(..., epochs=5): loss per epoch",
     [1.3502, 1.2852, 1.2337, 1.1915, 1.1556]),
    ("fit_5_epochs_accuracy/accuracy", "with metrics=['accuracy']: accuracy per epoch",
     [0.2946, 0.3036, 0.3036, 0.3304, 0.3393]),
    ("fit_5_epochs_accuracy/loss", "with metrics=['accuracy']: loss per epoch",
     [1.3502, 1.2852, 1.2337, 1.1915, 1.1556]),
    ("fit_500_epochs/evaluate", "500 epochs: model.evaluate(X_test, y_test)",
     [0.09586219489574432, 0.9736841917037964]),
    ("early_stopping/epochs", "early stopping: Stopped after N epochs.", 68),
    ("early_stopping/evaluate", "early stopping: model.evaluate(X_test, y_test)",
     [0.9856260418891907, 0.5263158082962036]),
    ("softmax/numpy", "softmax of [5, -1, 6] in NumPy, rounded to 3", [0.269, 0.001, 0.731]),
    ("softmax/keras", "keras.ops.softmax of [[5, -1, 6]], rounded to 3", [[0.269, 0.001, 0.731]]),
    ("predict/y_test", "y_test[:4]", [[2], [2], [1], [1]]),
    ("predict/probabilities", "model.predict(X_test.head(4)) (early-stopped model)",
     [[0.1397096, 0.5175301, 0.34276026], [0.24611066, 0.44371167, 0.31017768],
      [0.26309973, 0.43174297, 0.30515727], [0.259089, 0.44883674, 0.29207426]]),
    ("predict/argmax", "np.argmax(y_pred, axis=1)", [1, 1, 1, 1]),
    ("predict/names", "iris.target_names[np.argmax(y_pred, axis=1)]", ["versicolor"] * 4),
    ("one_hot/evaluate", "one-hot targets, 100 epochs: model.evaluate(X_test, y_test_oh)",
     [0.3470938205718994, 0.9473684430122375]),
)
# The 5-epoch cells print losses and accuracies with 4 decimals (verbose=2).
IRIS_DECIMALS = {"fit_5_epochs/loss": 4, "fit_5_epochs_accuracy/accuracy": 4,
                 "fit_5_epochs_accuracy/loss": 4}

STROKE = (
    ("missing/bmi", "data.isna().sum(): bmi", 201),
    ("shapes/train", "X_train.shape", [3066, 10]),
    ("shapes/val", "X_val.shape", [1022, 10]),
    ("shapes/test", "X_test.shape", [1022, 10]),
    ("transformed/train", "X_train_ct: (rows, columns), NAs", [3066, 20, 0]),
    ("transformed/val", "X_val_ct: (rows, columns), NAs", [1022, 20, 0]),
    ("transformed/test", "X_test_ct: (rows, columns), NAs", [1022, 20, 0]),
    ("other_gender", "gender 'Other' in train, val, test", [0, 1, 0]),
    ("parameters", "model.summary(): total parameters", 1217),
    ("plain/stopped_epoch", "plain fit: Epoch N: early stopping", 65),
    ("plain/best_epoch", "plain fit: restoring the best epoch", 15),
    ("plain/evaluate_val", "plain: model.evaluate(X_val_ct, y_val) (loss, pr_auc, accuracy, auc)",
     [0.14444079995155334, 0.13122102618217468, 0.9589040875434875, 0.8215014934539795]),
    ("class_weight/stopped_epoch", "class_weight {0: 1, 1: 10}: Epoch N: early stopping", 74),
    ("class_weight/best_epoch", "class_weight: restoring the best epoch", 24),
    ("class_weight/evaluate_val", "class_weight: model.evaluate(X_val_ct, y_val)",
     [0.3345569670200348, 0.13615098595619202, 0.8062622547149658, 0.8122206330299377]),
    ("class_weight/evaluate_test", "class_weight: model.evaluate(X_test_ct, y_test)",
     [0.3590189516544342, 0.1449822038412094, 0.8023483157157898, 0.7915638089179993]),
    ("confusion/0.5", "confusion_matrix(y_test, y_pred > 0.5)", [[792, 180], [22, 28]]),
    ("confusion/0.3", "confusion_matrix(y_test, y_pred > 0.3)", [[662, 310], [10, 40]]),
)

PUBLISHED = {"iris": (IRIS, IRIS_DECIMALS), "stroke": (STROKE, {})}


def lookup(values: dict, path: str):
    node = values
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _agree(ours, theirs, decimals: int | None) -> tuple[bool, float | None]:
    """(agrees, largest relative difference) for one entry."""
    if ours is None:
        return False, None
    if isinstance(theirs, str) or (isinstance(theirs, list) and theirs and isinstance(theirs[0], str)):
        return ours == theirs, None
    a = np.asarray(ours, dtype="float64")
    b = np.asarray(theirs, dtype="float64")
    if a.shape != b.shape:
        return False, None
    if decimals is not None:
        a = np.round(a, decimals)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(a == b, 0.0, np.abs(a - b) / np.maximum(np.abs(b), 1e-300))
    worst = float(np.max(rel)) if rel.size else 0.0
    return bool(np.all(np.abs(a - b) <= RTOL * np.abs(b))), worst


def check(demo: str, values: dict) -> list[dict]:
    """One row per published entry: path, cell, lecture, value (this run), agrees, rel."""
    entries, decimals = PUBLISHED[demo]
    rows = []
    for path, cell, theirs in entries:
        ours = lookup(values, path)
        ok, rel = _agree(ours, theirs, decimals.get(path))
        rows.append({"path": path, "cell": cell, "lecture": theirs, "value": ours,
                     "agrees": ok, "max_rel_diff": rel})
    return rows


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.8g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def table(rows: list[dict]) -> str:
    """The rows as text: cell, lecture, this run, ✓ or the difference."""
    lines = []
    for row in rows:
        if row["agrees"]:
            mark = "✓"
        elif row["max_rel_diff"] is not None:
            mark = f"✗ differs by {row['max_rel_diff']:.2g} (relative)"
        else:
            mark = "✗ differs"
        lines.append(f"- {row['cell']}\n    lecture: {_short(row['lecture'])}\n"
                     f"    here:    {_short(row['value'])}   {mark}")
    return "\n".join(lines)
