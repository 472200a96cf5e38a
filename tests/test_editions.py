"""The editions and start modes (kclf.editions): one table, a default per command, and one
line for every combination that cannot work. No keras here."""

import pytest

from kclf import editions
from kclf.errors import UsageError


def test_run_defaults_to_the_2026_lecture_start_and_compare_to_its_replay():
    start, edition = editions.resolve(None, None)
    assert (start.name, edition.name, edition.backend) == ("lecture", "2026", "torch")
    start, edition = editions.resolve(None, None, default="replay")
    assert (start.name, start.backend) == ("torch-2026", "torch")
    start, edition = editions.resolve(None, "2025", default="replay")
    assert (start.name, edition.backend) == ("tensorflow-2025", "tensorflow")


def test_a_replay_start_implies_its_edition_and_the_old_name_still_works():
    start, edition = editions.resolve("tensorflow", None)
    assert (start.name, edition.name) == ("tensorflow-2025", "2025")
    start, edition = editions.resolve("torch-2026", None)
    assert edition.name == "2026" and editions.EDITIONS["2026"].demos == ("stroke", "iris")
    assert editions.resolve("numpy", "2025")[0].backend is None


@pytest.mark.parametrize("start, edition, message", [
    ("torch-2026", "2025", "--start torch-2026 replays the 2026 edition's run; --edition 2025 "
     "expected --start lecture, numpy or tensorflow-2025"),
    ("pytorch", None, "--start pytorch: unknown start; expected one of lecture, torch-2026, "
     "tensorflow-2025, numpy, tensorflow"),
    (None, "2024", "--edition 2024: unknown edition; expected one of 2026, 2025"),
])
def test_what_cannot_work_is_one_line(start, edition, message):
    with pytest.raises(UsageError) as err:
        editions.resolve(start, edition)
    assert str(err.value) == message and err.value.exit_code == 2
