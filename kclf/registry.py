"""Finding experiments: the scripts in the checkout's experiments/ folder.

kclf is installed editable (``pip install -e .``, which ``make install`` does), so the
experiments/ folder beside the kclf package is found from the checkout. Another folder
can be named with the KCLF_EXPERIMENTS variable.

Each experiment declares, next to its NAME: DESCRIPTION, SLIDE, POSITION (its place in the
lecture's order, an integer; kclf list and compare follow it) and TOLERANCE (how kclf
compare judges it: a name in kclf.compare.tolerances.NAMED, or a dict from --start mode to
a name); optionally START_MODES, EDITIONS (the lecture editions it reproduces, kclf.editions;
the first is the default), IN_ALL (False: ``kclf compare all`` leaves it out), DATA_VARIABLES (it reads a data file: --data is for it)
and DATA_CHECK ("module:function" that checks a --data file before anything runs). They
are read with ``ast``, without importing the script (no keras import). A script without
POSITION or TOLERANCE, or two at the same POSITION, is an error.
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
    editions: tuple[str, ...] = ()  # --edition values it offers (EDITIONS)
    position: int = 0
    tolerance: str | dict = "deterministic"
    reads_data: bool = False
    data_check: str | None = None
    in_all: bool = True  # kclf compare all runs it (IN_ALL = False: the lecture, which repeats two)


def experiments_dir() -> Path:
    if os.environ.get(EXPERIMENTS_ENV):
        return Path(os.environ[EXPERIMENTS_ENV])
    return Path(__file__).resolve().parent.parent / "experiments"


_STRINGS = ("NAME", "DESCRIPTION", "SLIDE", "DATA_CHECK")
_LITERALS = ("START_MODES", "EDITIONS", "POSITION", "TOLERANCE", "DATA_VARIABLES", "IN_ALL")


def _constants(path: Path) -> dict:
    """The declarations (_STRINGS, _LITERALS) without importing the script."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if not isinstance(target, ast.Name):
                continue
            if target.id in _STRINGS:
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
            elif target.id in _LITERALS:
                try:
                    found[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    raise KclfError(f"{path}: {target.id} is not a literal; expected a constant "
                                    "(a string, number, tuple or dict)") from None
    return found


def _info(path: Path, consts: dict) -> ExperimentInfo:
    missing = [k for k in ("POSITION", "TOLERANCE") if k not in consts]
    if missing:
        raise KclfError(f"{path}: no {' and no '.join(missing)} next to NAME; expected e.g. "
                        'POSITION = 15 and TOLERANCE = "deterministic" (see kclf.registry)')
    tolerance = _tolerance(path, consts["TOLERANCE"])
    if not isinstance(consts["POSITION"], int) or isinstance(consts["POSITION"], bool):
        raise KclfError(f"{path}: POSITION {consts['POSITION']!r}; expected an integer")
    starts = tuple(str(v) for v in consts.get("START_MODES", ()))
    if isinstance(tolerance, dict) and "default" not in tolerance:
        uncovered = [s for s in starts if s not in tolerance]
        if uncovered:
            raise KclfError(f"{path}: TOLERANCE has no entry for --start {uncovered[0]}, one of its "
                            "START_MODES; expected one for each (or a \"default\")")
    return ExperimentInfo(
        consts["NAME"], consts.get("DESCRIPTION", ""), consts.get("SLIDE", ""), path, starts,
        tuple(str(v) for v in consts.get("EDITIONS", ())), consts["POSITION"], tolerance,
        bool(consts.get("DATA_VARIABLES")), consts.get("DATA_CHECK"),
        bool(consts.get("IN_ALL", True)),
    )


def _tolerance(path: Path, tolerance) -> str | dict:
    """A TOLERANCE declaration's shape: a tolerance name, or a dict from --start mode (an alias
    such as "tensorflow" is read as the mode it names) or "default" to one."""
    from kclf.editions import ALIASES, STARTS, start_names

    if isinstance(tolerance, str):
        return tolerance
    if not (isinstance(tolerance, dict) and tolerance
            and all(isinstance(v, str) for v in tolerance.values())):
        raise KclfError(f"{path}: TOLERANCE {tolerance!r}; expected a tolerance name or a dict "
                        "from --start mode to one")
    unknown = [k for k in tolerance if k != "default" and ALIASES.get(k, k) not in STARTS]
    if unknown:
        raise KclfError(f"{path}: TOLERANCE has an entry for {unknown[0]!r}, which is no --start "
                        f"mode; expected keys among {', '.join(start_names())}, default")
    return {ALIASES.get(k, k): v for k, v in tolerance.items()}


def script_tolerance(path: Path) -> str | dict | None:
    """A user's script's own TOLERANCE declaration, read as an experiment's is (None when it
    declares none): kclf compare judges the script by it, whatever the script is named."""
    from kclf.errors import UsageError

    try:
        consts = _constants(path)
    except SyntaxError as exc:
        raise UsageError(f"script {path}: not valid Python (line {exc.lineno}: {exc.msg}); "
                         "expected a script kclf compare can run") from None
    except OSError as exc:
        raise UsageError(f"script {path}: cannot be read ({exc.strerror}); expected a readable "
                         "Python file") from None
    return _tolerance(path, consts["TOLERANCE"]) if "TOLERANCE" in consts else None


def discover() -> dict[str, ExperimentInfo]:
    """All experiments, in their declared POSITION (the lecture's order)."""
    folder = experiments_dir()
    if not folder.is_dir():
        raise KclfError(
            f"experiments folder {folder} not found; install kclf editable from a checkout "
            f"(make install) or set {EXPERIMENTS_ENV}"
        )
    found: dict[str, ExperimentInfo] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        consts = _constants(path)
        if "NAME" in consts:
            found[consts["NAME"]] = _info(path, consts)
    at: dict[int, str] = {}
    for info in found.values():
        if info.position in at:
            raise KclfError(f"{info.path}: POSITION {info.position} is also {at[info.position]!r}'s; "
                            "expected one experiment per position")
        at[info.position] = info.name
    return dict(sorted(found.items(), key=lambda kv: kv[1].position))


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


def check_data(data: str | Path | None, names: list[str], scripts: bool = False) -> None:
    """--data before anything runs (no keras import): among ``names`` (or the user's
    ``scripts``) one that reads a data file, and a file each reader's DATA_CHECK accepts (a
    readable file, for the scripts). A bad file is a usage error naming it."""
    from kclf.errors import UsageError

    if data is None:
        return
    known = discover()
    readers = [known[n] for n in names if n in known and known[n].reads_data]
    if not scripts and not readers:
        every = ", ".join(n for n, info in known.items() if info.reads_data)
        raise UsageError(f"--data {data}: {', '.join(names)} read{'s' * (len(names) == 1)} no data "
                         f"file; expected an experiment that does ({every})")
    checks = {info.data_check for info in readers if info.data_check}
    for spec in sorted(checks):
        module_name, _, function = spec.partition(":")
        check = getattr(importlib.import_module(module_name), function)
        try:
            check(data)
        except KclfError as exc:
            raise UsageError(f"--data: {exc}") from None
    if checks:
        return
    try:
        Path(data).open("rb").close()
    except OSError as exc:
        raise UsageError(f"--data {data}: cannot be read ({exc.strerror}); expected a readable "
                         "data file") from None
