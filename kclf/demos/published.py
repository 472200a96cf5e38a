"""Every number the lecture's demos print, per edition, as published, and the table that sets
each beside this run's value.

Each entry is (path into the demo's ``values`` dict, what the lecture cell shows, value).
A number agrees when |ours − lecture| ≤ rtol · |lecture|; integers, strings, counts and
rounded outputs (the 4-decimal log lines, NumPy's 3-digit printout) exactly as printed.

- 2025 (keras 3.8.0, tensorflow 2.18.0): rtol 1e-6. The lecture's own cells on this machine's
  TensorFlow (keras 3.15.1, tensorflow-cpu 2.21) agree with every entry, the largest
  difference being 1.6e-7 relative (a loss in its 8th digit).
- 2026 (keras 3.14.1, torch 2.11.0, rendered on macOS): rtol 2e-6. The full-precision values
  (the ``evaluate`` lists) depend on which vector instructions torch's CPU kernels use:
  forcing AVX2 or no vector code on this machine moves the PR-AUC evaluations by 1-2 float32
  ulps and the iris 500-epoch loss by -1 to +13 ulps (1.1e-6 relative), while every count,
  epoch and 4-decimal line stays exact. Here (keras 3.15.1, torch 2.13.0, Linux x86-64) the
  class-weight PR-AUCs differ by one ulp (6e-8 and 9e-8 relative) and the iris loss by 1.1e-6.
"""

from __future__ import annotations

from kclf.slides import agreement

RTOL = 1e-6  # the 2025 edition's (TensorFlow)
RTOL_2026 = 2e-6  # the 2026 edition's (torch): see above

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

# -- the 2026 edition (torch) ----------------------------------------------------------------
# The preprocessing lecture's Example 3 prints these; the stroke demo reads the files it writes.
PREPROCESSING_2026 = (
    ("missing/bmi", "data.isna().sum(): bmi", 201),
    ("shapes/train", "X_train_raw.shape", [3066, 10]),
    ("shapes/val", "X_val_raw.shape", [1022, 10]),
    ("shapes/test", "X_test_raw.shape", [1022, 10]),
    ("value_counts/gender", "X_train_raw['gender'].value_counts()",
     {"Female": 1802, "Male": 1264}),
    ("value_counts/ever_married", "X_train_raw['ever_married'].value_counts()",
     {"Yes": 2007, "No": 1059}),
    ("value_counts/Residence_type", "X_train_raw['Residence_type'].value_counts()",
     {"Urban": 1536, "Rural": 1530}),
    ("value_counts/work_type", "X_train_raw['work_type'].value_counts()",
     {"Private": 1754, "Self-employed": 490, "children": 419, "Govt_job": 390,
      "Never_worked": 13}),
    ("value_counts/smoking_status", "X_train_raw['smoking_status'].value_counts()",
     {"never smoked": 1130, "Unknown": 944, "formerly smoked": 522, "smokes": 470}),
    ("transformed/train", "X_train after the transformer: shape, NAs", [3066, 20, 0]),
    ("transformed/val", "X_val after the transformer: shape, NAs", [1022, 20, 0]),
    ("transformed/test", "X_test after the transformer: shape, NAs", [1022, 20, 0]),
    ("val_gender", "X_val_raw['gender'].value_counts() (the unseen 'Other')",
     {"Female": 615, "Male": 406, "Other": 1}),
)
STROKE_2026 = PREPROCESSING_2026 + (
    ("target/classes", "np.unique(y_train): Classes", [0, 1]),
    ("target/counts", "np.unique(y_train): Counts", [2909, 157]),
    ("parameters", "model.summary(): total parameters (672 + 528 + 17)", 1217),
    ("fit_5_epochs/loss", "model.fit(..., epochs=5): loss per epoch",
     [0.2734, 0.1753, 0.1665, 0.1619, 0.1595]),
    ("fit_5_epochs_accuracy/accuracy", "with metrics=['accuracy']: accuracy per epoch",
     [0.9204, 0.9488, 0.9488, 0.9488, 0.9488]),
    ("fit_5_epochs_accuracy/loss", "with metrics=['accuracy']: loss per epoch",
     [0.2711, 0.1766, 0.1667, 0.1623, 0.1595]),
    ("early_stopping/epochs", "early stopping on val_accuracy: Stopped after N epochs.", 51),
    ("plain/stopped_epoch", "early stopping on val_pr_auc: Epoch N: early stopping", 81),
    ("plain/best_epoch", "val_pr_auc: restoring the best epoch", 31),
    ("plain/evaluate_val", "val_pr_auc: model.evaluate(X_val, y_val) (loss, pr_auc, accuracy, auc)",
     [0.14898666739463806, 0.12857568264007568, 0.9569471478462219, 0.8119411468505859]),
    ("class_weight/stopped_epoch", "class_weight {0: 1, 1: 10}: Epoch N: early stopping", 64),
    ("class_weight/best_epoch", "class_weight: restoring the best epoch", 14),
    ("class_weight/evaluate_val", "class_weight: model.evaluate(X_val, y_val)",
     [0.3523019552230835, 0.13380154967308044, 0.7896282076835632, 0.8259596824645996]),
    ("class_weight/evaluate_test", "class_weight: model.evaluate(X_test, y_test)",
     [0.36996063590049744, 0.15842117369174957, 0.7954990267753601, 0.8060390949249268]),
    ("confusion/0.5", "confusion_matrix(y_test, y_pred > 0.5)", [[778, 194], [15, 35]]),
    ("confusion/0.3", "confusion_matrix(y_test, y_pred > 0.3)", [[647, 325], [7, 43]]),
)
STROKE_2026_DECIMALS = {"fit_5_epochs/loss": 4, "fit_5_epochs_accuracy/accuracy": 4,
                        "fit_5_epochs_accuracy/loss": 4}

IRIS_2026 = (
    ("fit_5_epochs/loss", "model.fit(..., epochs=5): loss per epoch",
     [1.3920, 1.2912, 1.2196, 1.1576, 1.1084]),
    ("fit_5_epochs_accuracy/accuracy", "with metrics=['accuracy']: accuracy per epoch",
     [0.2857, 0.2857, 0.2857, 0.2946, 0.3393]),
    ("fit_5_epochs_accuracy/loss", "with metrics=['accuracy']: loss per epoch",
     [1.3930, 1.2970, 1.2203, 1.1596, 1.1067]),
    ("fit_500_epochs/evaluate", "500 epochs: model.evaluate(X_test, y_test)",
     [0.08639740198850632, 0.9736841917037964]),
    ("early_stopping/epochs", "early stopping: Stopped after N epochs.", 70),
    ("early_stopping/evaluate", "early stopping: model_es.evaluate(X_test, y_test)",
     [0.8077937960624695, 0.9210526347160339]),
    ("softmax/numpy", "softmax of [5, -1, 6] in NumPy, rounded to 3 (printed with precision 2)",
     [0.27, 0.0, 0.73]),
    ("softmax/keras", "keras.ops.softmax of [[5, -1, 6]], rounded to 3", [[0.269, 0.001, 0.731]]),
    ("predict/y_test", "y_test[:4]", [[2], [2], [1], [1]]),
    ("predict/probabilities", "model.predict(X_test.head(4)) (the 500-epoch model; printed "
     "with precision 2)",
     [[2.02e-06, 7.64e-02, 9.24e-01], [1.86e-07, 1.62e-03, 9.98e-01],
      [1.44e-02, 9.76e-01, 1.00e-02], [2.80e-03, 8.50e-01, 1.48e-01]]),
    ("predict/argmax", "np.argmax(y_pred, axis=1)", [2, 2, 1, 1]),
    ("predict/names", "iris.target_names[np.argmax(y_pred, axis=1)]",
     ["virginica", "virginica", "versicolor", "versicolor"]),
)
# NumPy prints with precision 2 (setup.py's set_printoptions): 2 decimals, or 3 significant
# digits where it switches to e-notation (y_pred, whose values span 1e-7 to 1); torch prints
# the softmax tensor with 4 decimals.
IRIS_2026_DECIMALS = {"fit_5_epochs/loss": 4, "fit_5_epochs_accuracy/accuracy": 4,
                      "fit_5_epochs_accuracy/loss": 4, "softmax/numpy": 2, "softmax/keras": 4,
                      "predict/probabilities": "3 significant"}

# (demo, edition) -> (entries, rounding per path, rtol)
PUBLISHED = {
    ("iris", "2025"): (IRIS, IRIS_DECIMALS, RTOL),
    ("stroke", "2025"): (STROKE, {}, RTOL),
    ("iris", "2026"): (IRIS_2026, IRIS_2026_DECIMALS, RTOL_2026),
    ("stroke", "2026"): (STROKE_2026, STROKE_2026_DECIMALS, RTOL_2026),
}


def lookup(values: dict, path: str):
    node = values
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check(demo: str, values: dict, edition: str = "2026") -> list[dict]:
    """One row per published entry: path, cell, lecture, value (this run), agrees, rel."""
    entries, decimals, rtol = PUBLISHED[(demo, edition)]
    rows = []
    for path, cell, theirs in entries:
        ours = lookup(values, path)
        ok, rel = agreement(ours, theirs, decimals.get(path), rtol)
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
        if row["agrees"] and row["max_rel_diff"]:
            mark = f"✓ ({row['max_rel_diff']:.2g} relative, within the tolerance)"
        elif row["agrees"]:
            mark = "✓"
        elif row["max_rel_diff"] is not None:
            mark = f"✗ differs by {row['max_rel_diff']:.2g} (relative)"
        else:
            mark = "✗ differs"
        lines.append(f"- {row['cell']}\n    lecture: {_short(row['lecture'])}\n"
                     f"    here:    {_short(row['value'])}   {mark}")
    return "\n".join(lines)
