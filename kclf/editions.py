"""The lecture's editions and the demos' start modes: one table each, one default per command.

Two editions of "Classification & Optimisation" are reproduced (../shared/lecture/):

- **2026** (the default: what the course teaches now) ran on the PyTorch backend, keras
  3.14.1 and torch 2.11.0; its demos run stroke first, then iris, in one process.
- **2025** ran on the TensorFlow backend, keras 3.8.0 and tensorflow 2.18.0; iris, then stroke.

A demo's *start* says where its models start and in which order they see the rows:

- ``lecture``: the lecture's own code and seeding on the backend it runs on. On the
  edition's own backend this reprints the edition's numbers; elsewhere Keras draws the
  weights and the batch order from that backend's generators, so the numbers differ.
- ``torch-2026`` / ``tensorflow-2025``: every fit starts from that edition's run's initial
  weights and sees its rows in that run's order (captured from a run on the edition's
  backend), with a TrainingTrace on: what is left to differ between backends is arithmetic.
- ``numpy``: kclf's own deterministic runs (NumPy-seeded weights, no shuffling).

``kclf run`` starts demos at ``lecture``; ``kclf compare`` at the edition's replay start,
with the edition's backend as the reference. ``tensorflow`` is kept as another name of
``tensorflow-2025`` (what it meant before the 2026 edition).
"""

from __future__ import annotations

from dataclasses import dataclass

from kclf.errors import UsageError


@dataclass(frozen=True)
class Edition:
    name: str
    backend: str  # the backend its renders ran on
    versions: str  # what its "Package Versions" slide (or its renders) say
    demos: tuple[str, ...]  # the demos in the document's order
    replay: str  # the start mode that replays its run on any backend


EDITIONS: dict[str, Edition] = {
    "2026": Edition("2026", "torch", "keras 3.14.1, torch 2.11.0", ("stroke", "iris"),
                    "torch-2026"),
    "2025": Edition("2025", "tensorflow", "keras 3.8.0, tensorflow 2.18.0", ("iris", "stroke"),
                    "tensorflow-2025"),
}
DEFAULT_EDITION = "2026"


@dataclass(frozen=True)
class Start:
    name: str
    edition: str | None  # the edition whose run it replays (None: any edition)
    help: str

    @property
    def backend(self) -> str | None:
        """The backend whose run it replays (the compare's reference), if it replays one."""
        return EDITIONS[self.edition].backend if self.edition else None


STARTS: dict[str, Start] = {
    "lecture": Start("lecture", None, "the lecture's own seeding on the backend it runs on (the "
                     "edition's backend reprints the edition)"),
    "torch-2026": Start("torch-2026", "2026", "the 2026 torch run's initial weights and batch "
                        "order, traced, on any backend"),
    "tensorflow-2025": Start("tensorflow-2025", "2025", "the 2025 TensorFlow run's initial "
                             "weights and batch order, traced, on any backend"),
    "numpy": Start("numpy", None, "kclf's NumPy-seeded runs, no shuffling"),
}
ALIASES = {"tensorflow": "tensorflow-2025"}
RUN_DEFAULT_START = "lecture"
# Where the demos find the Kaggle stroke CSV when --data is not given (read by the commands).
STROKE_CSV_ENV = "KCLF_STROKE_CSV"


def start_names() -> tuple[str, ...]:
    """Every name --start accepts (the aliases too)."""
    return (*STARTS, *ALIASES)


def edition(name: str | None) -> Edition:
    if name is None:
        return EDITIONS[DEFAULT_EDITION]
    if name not in EDITIONS:
        raise UsageError(f"--edition {name}: unknown edition; expected one of {', '.join(EDITIONS)}")
    return EDITIONS[name]


def resolve(start: str | None, edition_name: str | None, *, default: str = RUN_DEFAULT_START
            ) -> tuple[Start, Edition]:
    """(start, edition) from what the user gave: a replay start implies its edition; an edition
    given with another edition's replay is a usage error. ``default``: the command's default
    start ("replay" for the edition's replay start)."""
    if start is not None:
        start = ALIASES.get(start, start)
        if start not in STARTS:
            raise UsageError(f"--start {start}: unknown start; expected one of "
                             f"{', '.join(start_names())}")
    chosen = STARTS[start] if start else None
    if edition_name is None and chosen is not None and chosen.edition:
        edition_name = chosen.edition
    ed = edition(edition_name)
    if chosen is None:
        chosen = STARTS[ed.replay if default == "replay" else default]
    if chosen.edition and chosen.edition != ed.name:
        raise UsageError(f"--start {chosen.name} replays the {chosen.edition} edition's run; "
                         f"--edition {ed.name} expected --start lecture, numpy or {ed.replay}")
    return chosen, ed
