"""The demos' data: iris (multi-class) and the Kaggle stroke CSV (binary), ready for Keras.

Iris is scikit-learn's bundled copy, so it needs no network. The stroke data is the Kaggle
"Stroke Prediction Dataset" (healthcare-dataset-stroke-data.csv), which kclf does not ship:
:func:`load_stroke_csv` reads and checks a user's copy, and :func:`synthetic_stroke` makes
a deterministic stand-in with the same columns, types, "N/A" bmi values and about 5%
positives. :func:`prepare_stroke` is the lecture's preparation of either.

    >>> frame = synthetic_stroke()                     # or load_stroke_csv("stroke.csv")
    >>> splits = prepare_stroke(frame)
    >>> splits.X_train.shape[0], splits.X_val.shape[0], splits.X_test.shape[0]
    (3066, 1022, 1022)

Nothing here imports Keras.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kclf.errors import KclfError

# -- iris ------------------------------------------------------------------------------------

IRIS_FEATURES = ("SepalLength", "SepalWidth", "PetalLength", "PetalWidth")
IRIS_CLASSES = ("setosa", "versicolor", "virginica")


@dataclass(frozen=True)
class IrisData:
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] = IRIS_CLASSES


def iris() -> IrisData:
    """The lecture's iris split: ``train_test_split(X, y, random_state=24)``, 112 / 38 rows."""
    bunch = load_iris()
    X = pd.DataFrame(bunch.data, columns=list(IRIS_FEATURES))
    y = np.asarray(bunch.target)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=24)
    return IrisData(X_train, X_test, y_train, y_test)


# -- stroke: the schema and its loader -----------------------------------------------------

STROKE_COLUMNS = (
    "id", "gender", "age", "hypertension", "heart_disease", "ever_married", "work_type",
    "Residence_type", "avg_glucose_level", "bmi", "smoking_status", "stroke",
)
STROKE_CATEGORICAL = ("gender", "ever_married", "Residence_type", "work_type", "smoking_status")
STROKE_PASSTHROUGH = ("hypertension", "heart_disease")
STROKE_SCALED = ("age", "avg_glucose_level", "bmi")  # mean-imputed, then standardised
STROKE_BINARY = ("hypertension", "heart_disease", "stroke")
STROKE_NUMERIC = ("id", *STROKE_SCALED, *STROKE_BINARY)
# The mean imputation can fill these; a gap anywhere else has no sensible default.
STROKE_MAY_BE_MISSING = STROKE_SCALED
MISSING_MARKERS = ("", "N/A", "NA", "NaN", "nan")
MIN_ROWS = 10  # 20% test, then 25% of the rest for validation: each split needs a row or two


class StrokeDataError(KclfError):
    """The stroke CSV is missing, empty or not in the Kaggle schema."""


def _fail(path: Path, problem: str, expected: str, column: str | None = None) -> StrokeDataError:
    where = f"file {path}: column {column!r}: " if column else f"file {path}: "
    return StrokeDataError(f"{where}{problem}; expected {expected}")


_READ: dict = {}  # the last file read: {(path, size, mtime): frame}


def load_stroke_csv(path: str | Path) -> pd.DataFrame:
    """Read the Kaggle stroke CSV and check it column by column.

    Returns the 12 columns with numeric columns as numbers ("N/A" → NaN in age,
    avg_glucose_level and bmi) and categorical columns as strings. Raises StrokeDataError,
    one line naming the file, the column and the problem, for anything else.

    A process reads a file once: the command checks ``--data`` before anything runs and the
    demo reads it again; while the file is unchanged (same size and modification time), the
    second call gets a copy of the first's frame.
    """
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _READ:
        return _READ[key].copy()
    frame = _read_stroke_csv(path)
    _READ.clear()
    if key is not None:
        _READ[key] = frame
    return frame.copy()


def _read_stroke_csv(path: Path) -> pd.DataFrame:
    schema = "the Kaggle stroke CSV with columns " + ", ".join(STROKE_COLUMNS)
    if not path.exists():
        raise _fail(path, "not found", schema)
    if path.is_dir():
        raise _fail(path, "is a directory", schema)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise _fail(path, "empty", schema) from None
    except pd.errors.ParserError as exc:
        message = str(exc).strip().splitlines()[0]
        raise _fail(path, f"not a valid CSV ({message})", schema) from None
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text", schema) from None

    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in STROKE_COLUMNS if c not in raw.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise StrokeDataError(
            f"file {path}: column{'s' if len(missing) > 1 else ''} {names}: missing; "
            f"expected {schema}"
        )
    unexpected = [c for c in raw.columns if c not in STROKE_COLUMNS]
    if unexpected:
        names = ", ".join(repr(c) for c in unexpected)
        raise StrokeDataError(
            f"file {path}: column{'s' if len(unexpected) > 1 else ''} {names}: unexpected; "
            f"expected only the columns {', '.join(STROKE_COLUMNS)}"
        )

    raw = raw.apply(lambda col: col.str.strip())
    raw = raw[~(raw == "").all(axis=1)]  # blank lines; the index keeps the line numbers
    if len(raw) < MIN_ROWS:
        raise _fail(
            path, f"{len(raw)} data rows", f"at least {MIN_ROWS} to split into training, "
            "validation and test sets",
        )

    frame = pd.DataFrame(index=raw.index)
    for column in STROKE_COLUMNS:
        frame[column] = (
            _numeric(path, column, raw[column]) if column in STROKE_NUMERIC
            else raw[column]
        )
    if frame["stroke"].nunique() < 2:
        raise _fail(path, f"only the value {int(frame['stroke'].iloc[0])}",
                    "both 0 (no stroke) and 1 (stroke)", "stroke")
    return frame.reset_index(drop=True)


def _line(index) -> int:
    return int(index) + 2  # line 1 is the header


def _numeric(path: Path, column: str, text: pd.Series) -> pd.Series:
    """Parse one numeric column, failing on the first value that does not fit it."""
    gap = text.isin(MISSING_MARKERS)
    values = pd.to_numeric(text.where(~gap), errors="coerce")
    if column in STROKE_MAY_BE_MISSING:
        expected = "a number or N/A"
    elif column in STROKE_BINARY:
        expected = "0 or 1"
    else:
        expected = "an integer"
    bad = values.isna() & ~gap
    if bad.any():
        at = bad.idxmax()
        raise _fail(path, f"non-numeric value {text[at]!r} on line {_line(at)}", expected, column)
    if gap.any() and column not in STROKE_MAY_BE_MISSING:
        at = gap.idxmax()
        raise _fail(path, f"missing value on line {_line(at)}", expected, column)
    bad = ~np.isfinite(values) & ~gap
    if column in STROKE_BINARY:
        bad |= ~values.isin((0, 1))
    elif column not in STROKE_MAY_BE_MISSING:
        bad |= values != np.round(values)
    if bad.any():
        at = bad.idxmax()
        raise _fail(path, f"value {text[at]!r} on line {_line(at)}", expected, column)
    if column in STROKE_MAY_BE_MISSING:
        if gap.all():  # the mean imputation has nothing to average: the feature would vanish
            raise _fail(path, f"no values at all (every one of {len(text)} rows is missing)",
                        "a number in at least one row", column)
        return values.astype("float64")
    return values.astype("int64")


def write_stroke_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` the way Kaggle's file is written: missing bmi as "N/A"."""
    path = Path(path)
    frame.to_csv(path, index=False, na_rep="N/A")
    return path


# -- stroke: a synthetic stand-in ------------------------------------------------------------

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _a_validation_row(n: int) -> int:
    """A row that the lecture's split (0.2 / random_state 7, then 0.25 / 12) puts in validation."""
    main, _ = train_test_split(np.arange(n), test_size=0.2, random_state=7)
    _, val = train_test_split(main, test_size=0.25, random_state=12)
    return int(val[len(val) // 2])


def synthetic_stroke(n: int = 5110, seed: int = 2021, positive_rate: float = 0.049) -> pd.DataFrame:
    """A deterministic data set in the Kaggle schema (5110 rows and 4.9% strokes, like the
    real one) for when the real file is not at hand. Stroke risk rises with age, hypertension,
    heart disease and glucose, so a classifier has something to find; it is not real data.
    """
    if n < MIN_ROWS:
        raise ValueError(f"n must be at least {MIN_ROWS}; received {n!r}")
    rng = np.random.default_rng(seed)
    age = rng.uniform(0.08, 82.0, n)
    age = np.where(age < 2, age.round(2), age.round(0))
    adult = age >= 18
    child = age < 16

    gender = rng.choice(np.array(["Female", "Male"], dtype=object), n, p=[0.586, 0.414])
    rng.integers(n)  # (where "Other" once went; drawn still, so the other columns stay put)
    # The real file has a single "Other", and the lecture's split puts it in validation
    # only: so does this one, so the unseen-category lesson shows on synthetic data too.
    gender[_a_validation_row(n)] = "Other"
    hypertension = (rng.random(n) < _sigmoid(-5.2 + 0.055 * age)).astype("int64")
    heart_disease = (rng.random(n) < _sigmoid(-7.0 + 0.065 * age)).astype("int64")
    ever_married = np.where(adult & (rng.random(n) < 0.85), "Yes", "No").astype(object)
    work_type = np.where(
        child,
        rng.choice(np.array(["children", "Never_worked"], dtype=object), n, p=[0.95, 0.05]),
        rng.choice(
            np.array(["Private", "Self-employed", "Govt_job", "Never_worked"], dtype=object),
            n, p=[0.62, 0.20, 0.17, 0.01],
        ),
    )
    residence = rng.choice(np.array(["Urban", "Rural"], dtype=object), n)
    diabetic = rng.random(n) < _sigmoid(-3.0 + 0.03 * age)
    glucose = np.where(diabetic, rng.normal(200, 30, n), 55.0 + rng.gamma(4.0, 10.0, n))
    glucose = np.clip(glucose, 55.12, 271.74).round(2)
    bmi = np.where(adult, rng.normal(30.0, 7.0, n), rng.normal(19.5, 4.0, n))
    bmi = np.clip(bmi, 10.3, 97.6).round(1)
    bmi[rng.random(n) < 0.04] = np.nan  # written "N/A", as in the real file
    smoking = np.where(
        child,
        rng.choice(np.array(["Unknown", "never smoked"], dtype=object), n, p=[0.7, 0.3]),
        rng.choice(
            np.array(["never smoked", "Unknown", "formerly smoked", "smokes"], dtype=object),
            n, p=[0.40, 0.22, 0.20, 0.18],
        ),
    )

    risk = (0.075 * age + 0.6 * hypertension + 0.5 * heart_disease
            + 0.006 * (glucose - 100.0) + 0.3 * (smoking == "smokes"))
    # The intercept that makes the expected share of strokes positive_rate (bisection).
    low, high = -30.0, 10.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if _sigmoid(mid + risk).mean() < positive_rate else (low, mid)
    stroke = (rng.random(n) < _sigmoid(low + risk)).astype("int64")
    ids = (rng.choice(72940, size=n, replace=False) + 1).astype("int64")

    return pd.DataFrame({
        "id": ids, "gender": gender, "age": age, "hypertension": hypertension,
        "heart_disease": heart_disease, "ever_married": ever_married, "work_type": work_type,
        "Residence_type": residence, "avg_glucose_level": glucose, "bmi": bmi,
        "smoking_status": smoking, "stroke": stroke,
    })


# -- stroke: the lecture's preparation -------------------------------------------------------

@dataclass(frozen=True)
class StrokeSplits:
    """Training, validation and test arrays (float32) and the transformer fitted on training."""

    X_train: np.ndarray
    X_val: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    transformer: ColumnTransformer


def stroke_transformer() -> ColumnTransformer:
    """One-hot the categories (unknown ones ignored), pass the 0/1 flags through,
    mean-impute and standardise the rest."""
    return ColumnTransformer(
        [
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
             list(STROKE_CATEGORICAL)),
            ("passthrough", "passthrough", list(STROKE_PASSTHROUGH)),
            ("scaled", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()),
             list(STROKE_SCALED)),
        ],
        verbose_feature_names_out=False,
    )


def prepare_stroke(frame: pd.DataFrame) -> StrokeSplits:
    """Drop id; 20% test (random_state=7), then 25% of the rest validation (random_state=12);
    fit the transformer on the training split only and apply it to all three."""
    X = frame.drop(columns=["id", "stroke"])
    y = frame["stroke"].to_numpy()
    X_main, X_test, y_main, y_test = train_test_split(X, y, test_size=0.2, random_state=7)
    X_train, X_val, y_train, y_val = train_test_split(
        X_main, y_main, test_size=0.25, random_state=12
    )
    transformer = stroke_transformer().fit(X_train)

    def arrays(X, y):
        return transformer.transform(X).astype("float32"), y.astype("float32")

    (X_train, y_train), (X_val, y_val), (X_test, y_test) = (
        arrays(X_train, y_train), arrays(X_val, y_val), arrays(X_test, y_test)
    )
    return StrokeSplits(
        X_train, X_val, X_test, y_train, y_val, y_test,
        tuple(transformer.get_feature_names_out()), transformer,
    )
