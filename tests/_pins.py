"""The versions constraints.txt pins, for tests whose shipped files were made with them."""

from pathlib import Path

import pytest

CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def pinned(package: str) -> str:
    """The version constraints.txt pins ``package`` to."""
    for line in CONSTRAINTS.read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{package} is not pinned in constraints.txt")


def skip_unless_pinned(*packages: tuple[str, str]) -> None:
    """Skip unless each installed (import name, pinned distribution) pair is at its pin:
    a shipped capture is keyed to the versions that made it; others capture their own."""
    from kclf.backend import package_version

    off = [f"{name} {package_version(name)} (pinned {pinned(dist)})"  # 2.13.0+cpu is 2.13.0
           for name, dist in packages if package_version(name).split("+")[0] != pinned(dist)]
    if off:
        pytest.skip("the shipped captures are for the versions constraints.txt pins; "
                    + ", ".join(off) + " capture their own")
