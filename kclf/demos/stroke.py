"""The lecture's stroke demo (_stroke-prediction.qmd), cell by cell, in order.

The data is the Kaggle "Stroke Prediction Dataset" CSV (``--data PATH`` or KCLF_STROKE_CSV),
read and checked by kclf.demo_data.load_stroke_csv; without it, the synthetic stand-in in the
same schema (every header then says so, and the lecture's numbers cannot be expected).
The preparation is the lecture's own: ``make_column_transformer`` with pandas output, so
the network sees the same float64 frames as in the lecture.
"""

from __future__ import annotations

import random

import numpy as np

from kclf.demos.start import lecture_preamble

CAT_VARS = ["gender", "ever_married", "Residence_type", "work_type", "smoking_status"]
CLASS_WEIGHT = {0: 1, 1: 10}
# --start tensorflow: one trace record per epoch (96 steps of 32 rows) keeps trace.csv small.
TRACE_EVERY = {"plain": 96, "class_weight": 96}


def read(data_file):
    """The lecture's ``data``: the Kaggle file if given, else the synthetic stand-in."""
    from kclf.demo_data import load_stroke_csv, synthetic_stroke

    if data_file is None:
        return synthetic_stroke(), True
    return load_stroke_csv(data_file), False


def prepare(data):
    """The lecture's split (0.2 / random_state 7, then 0.25 / 12) and column transformer."""
    from sklearn import config_context
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = data.drop(["id", "stroke"], axis=1)
    target = data["stroke"]
    X_main, X_test, y_main, y_test = train_test_split(
        features, target, test_size=0.2, random_state=7)
    X_train, X_val, y_train, y_val = train_test_split(
        X_main, y_main, test_size=0.25, random_state=12)
    with config_context(transform_output="pandas"):
        ct = make_column_transformer(
            (OneHotEncoder(sparse_output=False, handle_unknown="ignore"), CAT_VARS),
            ("passthrough", ["hypertension", "heart_disease"]),
            remainder=make_pipeline(SimpleImputer(), StandardScaler()),
            verbose_feature_names_out=False,
        )
        X_train_ct = ct.fit_transform(X_train)
        X_val_ct = ct.transform(X_val)
        X_test_ct = ct.transform(X_test)
    return (X_train, X_val, X_test, y_train, y_val, y_test), (X_train_ct, X_val_ct, X_test_ct)


def create_model(n_features, seed=42):
    from keras.layers import Dense, Input
    from keras.models import Sequential

    random.seed(seed)
    model = Sequential()
    model.add(Input((n_features,)))
    model.add(Dense(32, "leaky_relu"))
    model.add(Dense(16, "leaky_relu"))
    model.add(Dense(1, "sigmoid"))
    return model


def _compiled(n_features):
    import keras

    model = create_model(n_features)
    pr_auc = keras.metrics.AUC(curve="PR", name="pr_auc")
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=[pr_auc, "accuracy", "auc"])
    return model


def _stopping(es, history) -> dict:
    return {"stopped_epoch": int(es.stopped_epoch) + 1 if es.stopped_epoch else None,
            "best_epoch": int(es.best_epoch) + 1, "epochs": len(history.history["loss"])}


def cells(ctx, starter, data_file=None) -> dict:
    """Run the demo's cells; return ``values`` (every printed number) and the predictions."""
    from keras.callbacks import EarlyStopping
    from sklearn.metrics import confusion_matrix

    lecture_preamble()
    data, synthetic = read(data_file)
    values: dict = {"synthetic": synthetic}
    ctx.header("The data" + (" (synthetic stand-in: give the Kaggle CSV with --data)"
                             if synthetic else f": {data_file}"))
    ctx.print(data.head().to_string())

    ctx.header("Split the data: first, look for missing values")
    missing = data.isna().sum()
    missing = missing[missing > 0]
    ctx.print(missing.to_string())
    values["missing"] = {k: int(v) for k, v in missing.items()}
    raw, transformed = prepare(data)
    X_train, X_val, X_test, y_train, y_val, y_test = raw
    X_train_ct, X_val_ct, X_test_ct = transformed
    values["shapes"] = {"train": list(X_train.shape), "val": list(X_val.shape),
                        "test": list(X_test.shape)}
    ctx.print(f"X_train.shape, X_val.shape, X_test.shape = {X_train.shape}, {X_val.shape}, "
              f"{X_test.shape}")

    ctx.header("What values do we see in the data? (training split)")
    for column in ("gender", "ever_married", "Residence_type", "work_type", "smoking_status"):
        counts = X_train[column].value_counts()
        ctx.print(f"{column}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    values["value_counts"] = {c: {str(k): int(v) for k, v in X_train[c].value_counts().items()}
                              for c in CAT_VARS}

    ctx.header("Scikit-learn column transformer")
    values["transformed"] = {}
    for name, X in zip(("train", "val", "test"), transformed):
        num_na = int(X.isna().sum().sum())
        ctx.print(f"The {name} set has shape {X.shape} & with {num_na} NAs.")
        values["transformed"][name] = [*X.shape, num_na]

    ctx.header("Handling unseen categories: gender 'Other'")
    values["other_gender"] = [int((X["gender"] == "Other").sum()) for X in (X_train, X_val, X_test)]
    ctx.print(f"'Other' in train, val, test: {values['other_gender']}")
    if values["other_gender"][1]:
        ind = int(np.argmax(X_val["gender"] == "Other"))
        rows = slice(max(ind - 1, 0), ind + 3)
        shown = X_val.iloc[rows][["gender"]].join(
            X_val_ct[["gender_Female", "gender_Male"]].iloc[rows])
        ctx.print(shown.to_string())
        values["other_encoded"] = X_val_ct[["gender_Female", "gender_Male"]].iloc[ind].tolist()

    ctx.header("Setup a binary classification model: model.summary()")
    n_features = X_train_ct.shape[1]
    summary = create_model(n_features)
    summary.summary(print_fn=lambda line, **_: ctx.print(line))
    values["parameters"] = int(summary.count_params())

    ctx.header("Add metrics, compile, and fit (early stopping on val_pr_auc, patience 50)")
    model = _compiled(n_features)
    es = EarlyStopping(patience=50, restore_best_weights=True, monitor="val_pr_auc", verbose=1)
    histories = {}
    hist = starter.fit("plain", model, X_train_ct, y_train, callbacks=[es], epochs=1_000,
                       verbose=0, validation_data=(X_val_ct, y_val))
    evaluation = [float(v) for v in model.evaluate(X_val_ct, y_val, verbose=0)]
    values["plain"] = {**_stopping(es, hist), "evaluate_val": evaluation}
    histories["plain"] = hist.history
    ctx.print(f"model.evaluate(X_val_ct, y_val) = {evaluation}")

    ctx.header("Overweight the minority class: class_weight={0: 1, 1: 10}")
    model = _compiled(n_features)
    es = EarlyStopping(patience=50, restore_best_weights=True, monitor="val_pr_auc", verbose=1)
    hist = starter.fit("class_weight", model, X_train_ct, y_train.to_numpy(), callbacks=[es],
                       epochs=1_000, verbose=0, validation_data=(X_val_ct, y_val),
                       class_weight=CLASS_WEIGHT)
    val = [float(v) for v in model.evaluate(X_val_ct, y_val, verbose=0)]
    test = [float(v) for v in model.evaluate(X_test_ct, y_test, verbose=0)]
    values["class_weight"] = {**_stopping(es, hist), "evaluate_val": val, "evaluate_test": test}
    histories["class_weight"] = hist.history
    ctx.print(f"model.evaluate(X_val_ct, y_val) = {val}")
    ctx.print(f"model.evaluate(X_test_ct, y_test) = {test}")

    ctx.header("Classification metrics: confusion matrices on the test set")
    y_pred = np.asarray(model.predict(X_test_ct, verbose=0))
    values["confusion"] = {}
    for cut in ("0.5", "0.3"):
        matrix = confusion_matrix(y_test, y_pred > float(cut))
        values["confusion"][cut] = matrix.tolist()
        ctx.print(f"confusion_matrix(y_test, y_pred > {cut}) = {matrix.tolist()}")
    return {"values": values, "y_test": y_test.to_numpy().tolist(),
            "y_pred": y_pred.reshape(-1).tolist(),
            "histories": {k: {m: [float(v) for v in h[m]] for m in h} for k, h in histories.items()}}


def figure(ctx, y_test, y_pred, title: str) -> None:
    """scikit-learn's RocCurveDisplay and PrecisionRecallDisplay of the weighted model."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    fig, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4.5))
    RocCurveDisplay.from_predictions(y_test, y_pred, name="", ax=roc)
    PrecisionRecallDisplay.from_predictions(y_test, y_pred, name="", ax=pr)
    pr.legend(loc="upper right")
    for ax in (roc, pr):
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    ctx.figure(fig, "roc_pr_curves.png")
