"""kclf.demo_data: the iris split, the stroke CSV loader's checks, the synthetic stand-in
and the lecture's preparation. No keras here: these run in the backend-free pass."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kclf.demo_data import (
    IRIS_CLASSES,
    IRIS_FEATURES,
    STROKE_COLUMNS,
    StrokeDataError,
    iris,
    load_stroke_csv,
    prepare_stroke,
    synthetic_stroke,
    write_stroke_csv,
)
from kclf.errors import KclfError


@pytest.fixture(scope="module")
def frame():
    return synthetic_stroke()


@pytest.fixture
def csv(tmp_path, frame):
    """A small stroke CSV in Kaggle's format, and a way to write edited copies of it."""
    path = write_stroke_csv(frame.head(40), tmp_path / "stroke.csv")
    lines = path.read_text().splitlines()

    def edited(edit=None):
        out = list(lines)
        if edit:
            edit(out)
        path.write_text("\n".join(out) + "\n")
        return path

    return edited


def test_iris_split_is_the_lectures():
    data = iris()
    assert data.X_train.shape == (112, 4) and data.X_test.shape == (38, 4)
    assert tuple(data.X_train.columns) == IRIS_FEATURES
    assert data.class_names == IRIS_CLASSES == ("setosa", "versicolor", "virginica")
    assert set(np.unique(data.y_train)) == {0, 1, 2}
    # train_test_split(X, y, random_state=24): the same rows every time
    assert list(data.X_train.index[:5]) == list(iris().X_train.index[:5])


def test_demo_data_does_not_import_keras():
    code = "import sys, kclf.demo_data; sys.exit('keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- the synthetic stand-in -----------------------------------------------------------------

def test_synthetic_stroke_is_deterministic(frame):
    pd.testing.assert_frame_equal(frame, synthetic_stroke())
    assert not synthetic_stroke(seed=1).equals(frame)


def test_synthetic_stroke_has_the_kaggle_schema(frame):
    assert tuple(frame.columns) == STROKE_COLUMNS
    assert len(frame) == 5110
    assert 0.04 <= frame["stroke"].mean() <= 0.06
    assert 0.02 <= frame["bmi"].isna().mean() <= 0.06
    assert frame.drop(columns="bmi").notna().all().all()
    assert frame["id"].is_unique
    for column in ("hypertension", "heart_disease", "stroke"):
        assert set(frame[column].unique()) == {0, 1}
    assert set(frame["gender"]) == {"Female", "Male", "Other"}
    assert set(frame["work_type"]) == {"Private", "Self-employed", "Govt_job", "children",
                                       "Never_worked"}
    assert set(frame["smoking_status"]) == {"never smoked", "Unknown", "formerly smoked",
                                            "smokes"}
    assert frame["age"].between(0.08, 82).all()


def test_synthetic_stroke_round_trips_through_the_loader(tmp_path, frame):
    path = write_stroke_csv(frame, tmp_path / "stroke.csv")
    text = path.read_text()
    assert "N/A" in text and "nan" not in text.lower().replace("n/a", "")
    pd.testing.assert_frame_equal(load_stroke_csv(path), frame)


def test_synthetic_strokes_follow_age(frame):
    old, young = frame[frame["age"] >= 60], frame[frame["age"] < 40]
    assert old["stroke"].mean() > 5 * young["stroke"].mean()


# -- the loader's checks --------------------------------------------------------------------

def error(path) -> str:
    with pytest.raises(StrokeDataError) as info:
        load_stroke_csv(path)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, KclfError)
    assert message.startswith(f"file {path}: ")
    return message


def test_missing_file(tmp_path):
    message = error(tmp_path / "nope.csv")
    assert "not found; expected the Kaggle stroke CSV" in message


def test_a_directory(tmp_path):
    assert "is a directory" in error(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert "empty; expected" in error(path)


def test_header_only(csv):
    def keep_header(lines):
        del lines[1:]

    assert "0 data rows; expected at least 10" in error(csv(keep_header))


def test_missing_column(csv):
    def drop_bmi(lines):
        for i, line in enumerate(lines):
            cells = line.split(",")
            del cells[STROKE_COLUMNS.index("bmi")]
            lines[i] = ",".join(cells)

    message = error(csv(drop_bmi))
    assert "column 'bmi': missing; expected the Kaggle stroke CSV with columns id, gender" in message


def test_unexpected_column(csv):
    def add(lines):
        lines[:] = [line + (",extra" if i == 0 else ",1") for i, line in enumerate(lines)]

    assert "column 'extra': unexpected; expected only the columns id, gender" in error(csv(add))


def replace_cell(column: str, line: int, value: str):
    def edit(lines):
        cells = lines[line - 1].split(",")
        cells[STROKE_COLUMNS.index(column)] = value
        lines[line - 1] = ",".join(cells)

    return edit


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("age", "sixty", "column 'age': non-numeric value 'sixty' on line 7; expected a number or N/A"),
        ("avg_glucose_level", "1O5.2", "column 'avg_glucose_level': non-numeric value '1O5.2' on line 7"),
        ("bmi", "inf", "column 'bmi': value 'inf' on line 7; expected a number or N/A"),
        ("stroke", "yes", "column 'stroke': non-numeric value 'yes' on line 7; expected 0 or 1"),
        ("stroke", "2", "column 'stroke': value '2' on line 7; expected 0 or 1"),
        ("stroke", "N/A", "column 'stroke': missing value on line 7; expected 0 or 1"),
        ("hypertension", "0.5", "column 'hypertension': value '0.5' on line 7; expected 0 or 1"),
        ("id", "abc", "column 'id': non-numeric value 'abc' on line 7; expected an integer"),
    ],
)
def test_bad_values_name_column_line_and_expectation(csv, column, value, expected):
    assert expected in error(csv(replace_cell(column, 7, value)))


def test_line_numbers_count_blank_lines(csv):
    def edit(lines):
        lines.insert(3, "")
        replace_cell("age", 10, "old")(lines)

    assert "'old' on line 10" in error(csv(edit))


def test_na_allowed_where_the_imputer_fills_it(csv):
    frame = load_stroke_csv(csv(replace_cell("age", 5, "N/A")))
    assert np.isnan(frame.loc[3, "age"])


def test_only_one_class(tmp_path, frame):
    path = write_stroke_csv(frame[frame["stroke"] == 0].head(20), tmp_path / "no_strokes.csv")
    assert "column 'stroke': only the value 0; expected both 0 (no stroke) and 1" in error(path)


def test_not_a_csv(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x00\xff")
    assert "not UTF-8 text" in error(path)


# -- the lecture's preparation ----------------------------------------------------------------

def test_prepare_stroke_splits_and_encodes(frame):
    splits = prepare_stroke(frame)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (3066, 1022, 1022)
    assert splits.X_train.dtype == np.float32 and splits.y_train.dtype == np.float32
    names = splits.feature_names
    assert "gender_Female" in names and "work_type_children" in names
    assert names[-5:] == ("hypertension", "heart_disease", "age", "avg_glucose_level", "bmi")
    assert splits.X_train.shape[1] == len(names)
    for x in (splits.X_train, splits.X_val, splits.X_test):
        assert np.isfinite(x).all()  # bmi's N/A are imputed everywhere


def test_prepare_stroke_fits_on_training_only(frame):
    splits = prepare_stroke(frame)
    scaled = splits.X_train[:, -3:]
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-3)
    # The other splits are scaled with the training means, so theirs are not exactly 0.
    assert np.abs(splits.X_test[:, -3:].mean(axis=0)).max() > 1e-4
    imputer = splits.transformer.named_transformers_["scaled"].steps[0][1]
    train_rows = frame.drop(columns=["id", "stroke"]).loc[_train_index(frame)]
    assert imputer.statistics_[2] == pytest.approx(train_rows["bmi"].mean())


def _train_index(frame):
    from sklearn.model_selection import train_test_split

    main, _ = train_test_split(frame.index, test_size=0.2, random_state=7)
    train, _ = train_test_split(main, test_size=0.25, random_state=12)
    return train


def test_prepare_stroke_ignores_unknown_categories(frame):
    splits = prepare_stroke(frame)
    unseen = frame.head(3).assign(work_type="Astronaut", gender="Unknown")
    row = splits.transformer.transform(unseen.drop(columns=["id", "stroke"]))
    work = [i for i, n in enumerate(splits.feature_names) if n.startswith("work_type_")]
    assert (row[:, work] == 0).all()


def test_synthetic_other_gender_lands_in_validation_only():
    """As in the Kaggle file, the single "Other" is unseen in training: the lecture's lesson."""
    from sklearn.model_selection import train_test_split

    frame = synthetic_stroke()
    main, test = train_test_split(frame, test_size=0.2, random_state=7)
    train, val = train_test_split(main, test_size=0.25, random_state=12)
    counts = [int((part["gender"] == "Other").sum()) for part in (train, val, test)]
    assert counts == [0, 1, 0]


def test_a_column_that_is_all_na_is_refused(tmp_path, frame):
    all_na = frame.head(40).copy()
    all_na["bmi"] = np.nan
    path = write_stroke_csv(all_na, tmp_path / "no_bmi.csv")
    assert "column 'bmi': no values at all (every one of 40 rows is missing); expected a number" in error(path)
