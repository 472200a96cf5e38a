"""The lecture's stroke demo (_stroke-prediction.qmd), cell by cell, in order.

2025: the demo splits and transforms the Kaggle file itself, then trains with early stopping
on val_pr_auc, plain and class-weighted. 2026: the preprocessing lecture's Example 3 splits and
transforms the file and writes CSV files, which the demo reads; the demo adds two 5-epoch fits,
a 500-epoch fit and early stopping on val_accuracy before the same two fits.

The data is the Kaggle "Stroke Prediction Dataset" CSV (``--data PATH`` or KCLF_STROKE_CSV),
read and checked by kclf.demo_data.load_stroke_csv; without it, the synthetic stand-in in the
same schema (every header then says so, and the lecture's numbers cannot be expected).
The preparation is the lecture's own: ``make_column_transformer`` with pandas output, so
the network sees the same float64 frames as in the lecture.
"""

from __future__ import annotations

import random

import numpy as np

CAT_VARS = ["gender", "ever_married", "Residence_type", "work_type", "smoking_status"]
CLASS_WEIGHT = {0: 1, 1: 10}
# Replays (--start torch-2026 / tensorflow-2025): one trace record per epoch (96 steps of 32
# rows) keeps trace.csv small.
TRACE_EVERY = {label: 96 for label in ("fit_5_epochs", "fit_5_epochs_accuracy", "fit_500_epochs",
                                       "early_stopping", "plain", "class_weight")}


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


def preprocessing(ctx, data, values: dict):
    """The splits, value counts, column transformer and unseen categories, printed as the
    lecture shows them (2025: in the stroke demo; 2026: the preprocessing lecture's Example 3).
    Returns (raw splits, transformed splits)."""
    ctx.header("Look for missing values")
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
    for column in CAT_VARS:
        counts = X_train[column].value_counts()
        ctx.print(f"{column}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    values["value_counts"] = {c: {str(k): int(v) for k, v in X_train[c].value_counts().items()}
                              for c in CAT_VARS}

    ctx.header("Make the column transformer")
    values["transformed"] = {}
    for name, X in zip(("train", "val", "test"), transformed):
        num_na = int(X.isna().sum().sum())
        ctx.print(f"The {name} set has shape {X.shape} & with {num_na} NAs.")
        values["transformed"][name] = [*X.shape, num_na]

    ctx.header("Handling unseen categories: gender 'Other'")
    values["val_gender"] = {str(k): int(v) for k, v in X_val["gender"].value_counts().items()}
    ctx.print("X_val_raw['gender'].value_counts(): "
              + ", ".join(f"{k} {v}" for k, v in values["val_gender"].items()))
    values["other_gender"] = [int((X["gender"] == "Other").sum()) for X in (X_train, X_val, X_test)]
    ctx.print(f"'Other' in train, val, test: {values['other_gender']}")
    if values["other_gender"][1]:
        ind = int(np.argmax(X_val["gender"] == "Other"))
        rows = slice(max(ind - 1, 0), ind + 3)
        shown = X_val.iloc[rows][["gender"]].join(
            X_val_ct[["gender_Female", "gender_Male"]].iloc[rows])
        ctx.print(shown.to_string())
        values["other_encoded"] = X_val_ct[["gender_Female", "gender_Male"]].iloc[ind].tolist()
    return raw, transformed


def processed_files(folder, raw, transformed) -> dict:
    """The preprocessing lecture's last cell: write the splits to CSV files, as the 2026 stroke
    demo reads them (``pd.read_csv``: the network sees the numbers the files hold)."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    _, _, _, y_train, y_val, y_test = raw
    frames = dict(zip(("x_train", "x_val", "x_test"), transformed))
    frames.update(y_train=y_train, y_val=y_val, y_test=y_test)
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return {name: pd.read_csv(folder / f"{name}.csv") for name in frames}


def _five_epochs(ctx, starter, label, model, X, y, metrics: tuple[str, ...]) -> dict:
    history = starter.fit(label, model, X, y, epochs=5, verbose=0)
    shown = {k: [float(v) for v in history.history[k]] for k in (*metrics, "loss")}
    for i in range(5):
        ctx.print(f"Epoch {i + 1}/5 - " + " - ".join(f"{k}: {shown[k][i]:.4f}" for k in shown))
    return shown


def cells(ctx, starter, data_file=None, edition: str = "2026") -> dict:
    """Run the demo's cells (after the lecture's preamble); return ``values`` (every printed
    number) and the predictions. 2026 first runs the preprocessing lecture's Example 3 and
    reads the CSV files it writes (into the run's folder, ``stroke/processed/``)."""
    from keras.callbacks import EarlyStopping
    from sklearn.metrics import confusion_matrix

    data, synthetic = read(data_file)
    values: dict = {"synthetic": synthetic}
    where = (" (synthetic stand-in: give the Kaggle CSV with --data)" if synthetic
             else f": {data_file}")
    if edition == "2026":
        ctx.header("The preprocessing lecture, Example 3: the stroke data" + where)
    else:
        ctx.header("The data" + where)
    ctx.print(data.head().to_string())
    raw, transformed = preprocessing(ctx, data, values)
    y_train_raw, y_val_raw, y_test_raw = raw[3:]
    histories = {}
    if edition == "2026":
        folder = ctx.out / "stroke" / "processed"
        frames = processed_files(folder, raw, transformed)
        ctx.header(f"Save the preprocessed data to files: {ctx.shown / 'stroke' / 'processed'}/")
        X_train, X_val, X_test = frames["x_train"], frames["x_val"], frames["x_test"]
        y_train, y_val, y_test = frames["y_train"], frames["y_val"], frames["y_test"]

        ctx.header("The stroke demo: load up the (pre-)preprocessed data; the target variable")
        classes, counts = np.unique(y_train.values.ravel(), return_counts=True)
        values["target"] = {"classes": classes.tolist(), "counts": counts.tolist()}
        ctx.print(f"Classes: {classes}\nCounts: {counts}")
    else:
        X_train, X_val, X_test = transformed
        y_train, y_val, y_test = y_train_raw, y_val_raw, y_test_raw
    n_features = X_train.shape[1]

    ctx.header("Setup a binary classification model: model.summary()")
    summary = create_model(n_features)
    summary.summary(print_fn=lambda line, **_: ctx.print(line))
    values["parameters"] = int(summary.count_params())

    if edition == "2026":
        ctx.header("Fit the model: model.fit(X_train, y_train, epochs=5, verbose=2)")
        model = create_model(n_features)
        model.compile("adam", "binary_crossentropy")
        values["fit_5_epochs"] = _five_epochs(ctx, starter, "fit_5_epochs", model,
                                              X_train, y_train, ())

        ctx.header("Track accuracy as the model trains")
        model = create_model(n_features)
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        values["fit_5_epochs_accuracy"] = _five_epochs(ctx, starter, "fit_5_epochs_accuracy",
                                                       model, X_train, y_train, ("accuracy",))

        ctx.header("Run a long fit: 500 epochs, validation_data=(X_val, y_val)")
        model = create_model(n_features)
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        hist = starter.fit("fit_500_epochs", model, X_train, y_train, epochs=500,
                           validation_data=(X_val, y_val), verbose=False)
        histories["fit_500_epochs"] = hist.history
        ctx.print(f"final epoch: loss {hist.history['loss'][-1]:.4f}, val_loss "
                  f"{hist.history['val_loss'][-1]:.4f}, val_accuracy "
                  f"{hist.history['val_accuracy'][-1]:.4f}")

        ctx.header("Add early stopping (patience 50, val_accuracy, restore_best_weights)")
        model = create_model(n_features)
        model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
        es = EarlyStopping(restore_best_weights=True, patience=50, monitor="val_accuracy")
        hist_es = starter.fit("early_stopping", model, X_train, y_train, epochs=500,
                              validation_data=(X_val, y_val), callbacks=[es], verbose=False)
        histories["early_stopping"] = hist_es.history
        values["early_stopping"] = {"epochs": len(hist_es.history["loss"]),
                                    "best_epoch": int(es.best_epoch) + 1}
        ctx.print(f"Stopped after {len(hist_es.history['loss'])} epochs.")

    ctx.header("Add metrics, compile, and fit (early stopping on val_pr_auc, patience 50)")
    model = _compiled(n_features)
    es = EarlyStopping(patience=50, restore_best_weights=True, monitor="val_pr_auc", verbose=1)
    hist = starter.fit("plain", model, X_train, y_train, callbacks=[es], epochs=1_000,
                       verbose=0, validation_data=(X_val, y_val))
    evaluation = [float(v) for v in model.evaluate(X_val, y_val, verbose=0)]
    values["plain"] = {**_stopping(es, hist), "evaluate_val": evaluation}
    histories["plain"] = hist.history
    ctx.print(f"model.evaluate(X_val, y_val) = {evaluation}")

    ctx.header("Overweight the minority class: class_weight={0: 1, 1: 10}")
    model = _compiled(n_features)
    es = EarlyStopping(patience=50, restore_best_weights=True, monitor="val_pr_auc", verbose=1)
    hist = starter.fit("class_weight", model, X_train, y_train.to_numpy(), callbacks=[es],
                       epochs=1_000, verbose=0, validation_data=(X_val, y_val),
                       class_weight=CLASS_WEIGHT)
    val = [float(v) for v in model.evaluate(X_val, y_val, verbose=0)]
    test = [float(v) for v in model.evaluate(X_test, y_test, verbose=0)]
    values["class_weight"] = {**_stopping(es, hist), "evaluate_val": val, "evaluate_test": test}
    histories["class_weight"] = hist.history
    ctx.print(f"model.evaluate(X_val, y_val) = {val}")
    ctx.print(f"model.evaluate(X_test, y_test) = {test}")

    ctx.header("Classification metrics: confusion matrices on the test set")
    y_pred = np.asarray(model.predict(X_test, verbose=0))
    values["confusion"] = {}
    for cut in ("0.5", "0.3"):
        matrix = confusion_matrix(y_test, y_pred > float(cut))
        values["confusion"][cut] = matrix.tolist()
        ctx.print(f"confusion_matrix(y_test, y_pred > {cut}) = {matrix.tolist()}")
    return {"values": values, "y_test": np.asarray(y_test).reshape(-1).tolist(),
            "y_pred": y_pred.reshape(-1).tolist(),
            "histories": {k: {m: [float(v) for v in h[m]] for m in h} for k, h in histories.items()}}


def figure(ctx, y_test, y_pred, title: str, filename: str = "roc_pr_curves.png") -> None:
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
    ctx.figure(fig, filename)
