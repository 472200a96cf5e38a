"""kclf.trace.variables: which variables a name stands for, and what ``variables=`` may be,
without Keras."""

from types import SimpleNamespace

import pytest

from kclf.errors import KclfError
from kclf.trace import variables

PATHS = ["sequential_3/dense/kernel", "sequential_3/dense/bias",
         "sequential_3/dense_1/kernel", "sequential_3/dense_1/bias"]


@pytest.mark.parametrize("name, expected", [
    ("sequential_3/dense/kernel", ["sequential_3/dense/kernel"]),  # a path
    ("sequential_3", PATHS),  # a path prefix: the model
    ("sequential_3/dense_1", PATHS[2:]),  # a layer's path
    ("dense", PATHS[:2]),  # a layer name, not dense_1's
    ("dense_1", PATHS[2:]),
    ("dense/kernel", ["sequential_3/dense/kernel"]),  # the end of a path
    ("dense_1/bias", ["sequential_3/dense_1/bias"]),
    ("dens", []),
])
def test_matches_paths_prefixes_layer_names_and_path_ends(name, expected):
    assert variables.matches(name, PATHS) == expected


@pytest.mark.parametrize("name", ["kernel", "bias"])
def test_a_name_ending_several_paths_is_ambiguous_and_lists_them(name):
    with pytest.raises(LookupError, match="ambiguous") as error:
        variables.matches(name, PATHS)
    assert f"dense/{name}" in str(error.value) and f"dense_1/{name}" in str(error.value)


def test_a_layer_name_shared_by_two_layers_is_ambiguous():
    paths = ["encoder/dense/kernel", "decoder/dense/kernel"]
    with pytest.raises(LookupError, match="encoder/dense"):
        variables.matches("dense", paths)
    assert variables.matches("decoder/dense", paths) == ["decoder/dense/kernel"]


def test_resolve_keeps_model_order_and_names_the_unknown():
    assert variables.resolve(["dense_1/bias", "dense"], PATHS) == PATHS[:2] + PATHS[3:]
    assert variables.resolve("dense_1", PATHS) == PATHS[2:]
    with pytest.raises(ValueError, match=r"\['nope'\] not in the model") as error:
        variables.resolve(["dense", "nope"], PATHS)
    assert PATHS[0] in str(error.value)
    with pytest.raises(ValueError, match="ambiguous"):
        variables.resolve(["kernel"], PATHS)


@pytest.mark.parametrize("given", [[1], [None], 42, 4.5, [b"dense"], b"dense", ["dense", 1], object()],
                         ids=repr)
def test_a_selector_that_is_not_strings_is_a_one_line_type_error(given):
    with pytest.raises(TypeError, match="expected") as error:
        variables.check_selector(given)
    assert isinstance(error.value, KclfError) and "\n" not in str(error.value)


@pytest.mark.parametrize("given", [[], (), "", [""], ["dense", "/"]], ids=repr)
def test_a_selector_that_names_nothing_is_a_one_line_value_error(given):
    with pytest.raises(ValueError, match="expected") as error:
        variables.check_selector(given)
    assert isinstance(error.value, KclfError) and "\n" not in str(error.value)


def test_a_selector_is_kept_as_names_once_or_as_the_callable():
    assert variables.check_selector(None) is None
    assert variables.check_selector("dense") == ("dense",)
    assert variables.check_selector(name for name in ["dense", "dense_1"]) == ("dense", "dense_1")
    assert variables.check_selector({"dense"}) == ("dense",)
    chooser = lambda variable: True  # noqa: E731
    assert variables.check_selector(chooser) is chooser


def test_choose_keeps_model_order_or_says_the_callable_chose_none():
    model = [SimpleNamespace(path=p) for p in PATHS]
    assert variables.choose(model, None) == model
    assert variables.choose(model, ("dense_1/bias", "dense/kernel")) == [model[0], model[3]]
    assert variables.choose(model, lambda v: v.path.endswith("bias")) == [model[1], model[3]]
    with pytest.raises(ValueError, match="the callable chose none") as error:
        variables.choose(model, lambda v: False)
    assert isinstance(error.value, KclfError) and PATHS[0] in str(error.value)


def test_lookup_finds_one_variable_or_lists_the_candidates():
    assert variables.lookup("dense/kernel", PATHS) == 0
    assert variables.lookup("sequential_3/dense_1/bias", PATHS) == 3
    with pytest.raises(KeyError, match="give one"):
        variables.lookup("dense", PATHS)  # a layer: two variables
    with pytest.raises(KeyError, match="not recorded"):
        variables.lookup("output/kernel", PATHS)
    with pytest.raises(KeyError, match="dense_1/kernel"):
        variables.lookup("kernel", PATHS)
