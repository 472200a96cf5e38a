"""One validator for every numeric command-line option, in one wording.

    parser.add_argument("--jobs", type=at_least(1), default=1)
    # kclf compare --jobs 0 → kclf: error: argument --jobs/-j: got '0'; expected an integer >= 1
"""

from __future__ import annotations

import argparse
import math


def at_least(minimum: float, kind: type = int, *, strictly: bool = False):
    """The argparse type of a numeric option: a finite ``kind`` (int or float) >= ``minimum``
    (> with ``strictly``), else one line naming the option, what it got and what it expects,
    while the options are parsed, before any work."""
    wanted = f"{'an integer' if kind is int else 'a number'} {'>' if strictly else '>='} {minimum:g}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (value is None or not math.isfinite(value) or value < minimum
                or (strictly and value == minimum)):
            raise argparse.ArgumentTypeError(f"got {text!r}; expected {wanted}")
        return value

    parse.__name__ = kind.__name__  # argparse's own messages name the type
    return parse
