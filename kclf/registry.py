"""Finding experiments: the scripts in the checkout's experiments/ folder.

kclf is installed editable (``pip install -e .``, which ``make install`` does), so the
experiments/ folder beside the kclf package is found from the checkout. Another folder
can be named with the KCLF_EXPERIMENTS variable.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from kclf.errors import KclfError, UnknownExperiment

EXPERIMENTS_ENV = "KCLF_EXPERIMENTS"


@dataclass(frozen=True)
class ExperimentInfo:
    name: str
    description: str
    slide: str
    path: Path
    starts: tuple[str, ...] = ()  # --start modes it offers (START_MODES); the first is the default


def experiments_dir() -> Path:
    if os.environ.get(EXPERIMENTS_ENV):
        return Path(os.environ[EXPERIMENTS_ENV])
    return Path(__file__).resolve().parent.parent / "experiments"


def _constants(path: Path) -> dict:
    """Read NAME, DESCRIPTION, SLIDE (strings) and START_MODES (a tuple of strings) without
    importing the script (no keras import)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if not isinstance(target, ast.Name):
                continue
            if target.id in ("NAME", "DESCRIPTION", "SLIDE"):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
            elif target.id == "START_MODES":
                found["START_MODES"] = tuple(str(v) for v in ast.literal_eval(node.value))
    return found


def discover() -> dict[str, ExperimentInfo]:
    """All experiments, in the order the lecture presents them (ORDER), then by name."""
    folder = experiments_dir()
    if not folder.is_dir():
        raise KclfError(
            f"experiments folder {folder} not found; install kclf editable from a checkout "
            f"(make install) or set {EXPERIMENTS_ENV}"
        )
    found = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        consts = _constants(path)
        if "NAME" in consts:
            found[consts["NAME"]] = ExperimentInfo(
                consts["NAME"], consts.get("DESCRIPTION", ""), consts.get("SLIDE", ""), path,
                consts.get("START_MODES", ()),
            )
    order = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


ORDER = (
    "iris",
    "stroke",
    "logistic-forward",
    "softmax-forward",
    "cross-entropy-vs-mse",
    "sgd",
    "bgd",
    "minibatch",
    "learning-rates",
    "gradient-based-learning",
    "gradient-descent-pitfalls",
    "minibatch-noise",
    "learning-rate-schedule",
    "non-zero-derivatives",
)


def get(name: str) -> ExperimentInfo:
    experiments = discover()
    if name not in experiments:
        raise UnknownExperiment(
            f"unknown experiment {name!r}; expected one of: {', '.join(experiments)}"
        )
    return experiments[name]


def load(info: ExperimentInfo | str):
    """Import an experiment script as a module (this imports keras: select the backend first)."""
    if isinstance(info, str):
        info = get(info)
    module_name = "kclf_experiment_" + info.path.stem
    spec = importlib.util.spec_from_file_location(module_name, info.path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
