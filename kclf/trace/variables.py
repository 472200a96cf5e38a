"""Which variables a trace records, without Keras: ``variables=`` checked, and names found.

A name stands for a variable's path ("sequential_3/dense/kernel"), a path prefix (a model or
a layer with its sub-layers), a layer name ("dense") or an unambiguous end of a path
("dense/kernel"), the same way when choosing what to record and when reading it back:

    >>> paths = ["sequential_3/dense/kernel", "sequential_3/dense/bias"]
    >>> resolve("dense", paths)
    ['sequential_3/dense/kernel', 'sequential_3/dense/bias']
    >>> lookup("dense/bias", paths)
    1
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kclf.errors import KclfError


class SelectorTypeError(KclfError, TypeError):
    """``variables=`` is not a string, a collection of strings or a callable."""


class SelectorValueError(KclfError, ValueError):
    """``variables=`` names nothing, or a variable the model does not have or several."""


SELECTOR_FORMS = ("a path, a layer name or a path end such as 'dense/kernel', a list of them, "
                  "or a callable taking a variable")


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_selector(variables) -> tuple[str, ...] | Callable | None:
    """``variables=`` as the trace keeps it: None (all), a callable, or a tuple of names.
    A one-line SelectorTypeError for anything that is not a string, a collection of
    strings or a callable; SelectorValueError for an empty one."""
    if variables is None or (callable(variables) and not isinstance(variables, str)):
        return variables
    if isinstance(variables, str):
        names = (variables,)
    elif isinstance(variables, (bytes, bytearray)) or not hasattr(variables, "__iter__"):
        raise SelectorTypeError(f"variables is {_describe(variables)}; expected {SELECTOR_FORMS}")
    else:
        names = tuple(variables)  # once: a generator would be empty at the next fit
        for name in names:
            if not isinstance(name, str):
                hint = f" (a variable: give its path, {name.path!r})" if isinstance(
                    getattr(name, "path", None), str) else ""
                raise SelectorTypeError(f"variables holds {_describe(name)}{hint}; expected strings: "
                                        "paths, layer names or path ends such as 'dense/kernel'")
        if not names:
            raise SelectorValueError("variables is empty; expected at least one path, layer name "
                                     "or path end (or None: every trainable variable)")
    if any(not name.strip("/ ") for name in names):
        raise SelectorValueError(f"variables {list(names)} holds an empty name; expected paths, "
                                 "layer names or path ends such as 'dense/kernel'")
    return names


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def matches(name: str, paths: Sequence[str]) -> list[str]:
    """The paths ``name`` stands for, in order: the exact path; a path prefix (a model or a
    layer with its sub-layers); a layer name or the end of a layer's path (``dense`` for
    ``sequential_3/dense/kernel``); the end of a variable's path (``dense/kernel``).
    Raises LookupError when a layer name or path end fits more than one layer or variable."""
    if name in paths:
        return [name]
    want = _parts(name)
    k = len(want)
    prefix = [p for p in paths if _parts(p)[:k] == want]
    if prefix:
        return prefix
    layer = [p for p in paths if len(_parts(p)) > k and _parts(p)[:-1][-k:] == want]
    owners = {"/".join(_parts(p)[:-1]) for p in layer}
    if len(owners) > 1:
        raise LookupError(f"{name!r} is ambiguous: it names layers {sorted(owners)}")
    if layer:
        return layer
    suffix = [p for p in paths if _parts(p)[-k:] == want]
    if len(suffix) > 1:
        raise LookupError(f"{name!r} is ambiguous: it ends {suffix}")
    return suffix


def resolve(names: str | Sequence[str], paths: Sequence[str]) -> list[str]:
    """The paths chosen by ``names`` (paths, layer names, unambiguous path ends), in model
    order; ValueError naming what is unknown or ambiguous and listing the candidates."""
    names = [names] if isinstance(names, str) else list(names)
    chosen, unknown = set(), []
    for name in names:
        try:
            found = matches(name, paths)
        except LookupError as exc:
            raise SelectorValueError(f"variables: {exc}; expected paths among {list(paths)}") from None
        if not found:
            unknown.append(name)
        chosen.update(found)
    if unknown:
        raise SelectorValueError(f"variables {unknown} not in the model; expected paths among {list(paths)}")
    return [p for p in paths if p in chosen]


def lookup(name: str, paths: Sequence[str]) -> int:
    """Index of the one recorded variable ``name`` stands for; KeyError listing candidates."""
    try:
        found = matches(name, paths)
    except LookupError as exc:
        raise KeyError(f"{exc}; recorded: {list(paths)}") from None
    if len(found) != 1:
        why = "not recorded" if not found else f"names {len(found)} variables {found}; give one"
        raise KeyError(f"{name!r} {why}; recorded: {list(paths)}")
    return list(paths).index(found[0])


def choose(variables: list, selector: tuple[str, ...] | Callable | None) -> list:
    """The variables (objects with a ``path``) that ``selector`` (as :func:`check_selector`
    keeps it) chooses, in model order; SelectorValueError when it chooses none."""
    if selector is None:
        return list(variables)
    if callable(selector):
        selected = [v for v in variables if selector(v)]
        if not selected:
            raise SelectorValueError(f"variables: the callable chose none of {[v.path for v in variables]}; "
                                     "expected it to return True for at least one")
        return selected
    paths = resolve(selector, [v.path for v in variables])
    return [v for v in variables if v.path in paths]
