"""The lecture's two demonstrations, cell by cell: iris (multi-class) and stroke (binary).

``kclf.demos.iris.cells`` and ``kclf.demos.stroke.cells`` run the lecture's cells in its
order with its seeding; :mod:`kclf.demos.start` decides where the models start and in
which order they see the rows; :mod:`kclf.demos.published` holds every number the lecture
prints and sets each one beside this backend's. The NumPy-seeded deterministic runs
(``--start numpy``) are in ``iris_numpy`` and ``stroke_numpy``.
"""


def lecture_cells(demo: str):
    """The cells function of ``demo`` ("iris" or "stroke"): (ctx, starter, data) -> results."""
    if demo == "iris":
        from kclf.demos.iris import cells
    elif demo == "stroke":
        from kclf.demos.stroke import cells
    else:
        raise ValueError(f"unknown demo {demo!r}; expected iris or stroke")
    return cells
