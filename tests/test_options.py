"""kclf.options.at_least: every numeric option of kclf compare and kclf bench, one wording."""

import argparse

import pytest

from kclf import cli
from kclf.options import at_least


@pytest.mark.parametrize("parse, text, wanted", [
    (at_least(1), "0", "got '0'; expected an integer >= 1"),
    (at_least(1), "1.5", "got '1.5'; expected an integer >= 1"),
    (at_least(0, float), "-0.1", "got '-0.1'; expected a number >= 0"),
    (at_least(0, float), "nan", "got 'nan'; expected a number >= 0"),
    (at_least(0, float), "inf", "got 'inf'; expected a number >= 0"),
    (at_least(0, float, strictly=True), "0", "got '0'; expected a number > 0"),
])
def test_a_bad_number_is_refused_in_one_wording(parse, text, wanted):
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{wanted}$"):
        parse(text)


def test_good_numbers_come_back_as_their_kind():
    assert at_least(1)("3") == 3 and isinstance(at_least(1)("3"), int)
    assert at_least(0, float)("0") == 0.0
    assert at_least(0, float, strictly=True)("1e-3") == 1e-3


@pytest.mark.parametrize("argv, wanted", [
    (["compare", "sgd", "--jobs", "0"], "argument --jobs/-j: got '0'; expected an integer >= 1"),
    (["compare", "sgd", "--timeout", "0"], "argument --timeout: got '0'; expected a number > 0"),
    (["compare", "sgd", "--rtol", "-1"], "argument --rtol: got '-1'; expected a number >= 0"),
    (["compare", "sgd", "--envelope-steps", "-5"],
     "argument --envelope-steps: got '-5'; expected an integer >= 0"),
    (["bench", "--repeats", "0"], "argument --repeats: got '0'; expected an integer >= 1"),
])
def test_the_cli_refuses_a_bad_number_before_any_work_with_exit_2(argv, wanted, tmp_path, capsys):
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kclf: error: {wanted} (see kclf --help)"]
    assert not (tmp_path / "out").exists()
