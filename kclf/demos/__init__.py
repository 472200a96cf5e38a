"""The lecture's two demonstrations, cell by cell: iris (multi-class) and stroke (binary).

``kclf.demos.iris.cells`` and ``kclf.demos.stroke.cells`` run the lecture's cells in its
order with its seeding (:func:`cells` picks one); :mod:`kclf.demos.run` prints a run as
``kclf run`` shows it; :mod:`kclf.demos.start` decides where the models start and in
which order they see the rows; :mod:`kclf.demos.published` holds every number the lecture
prints and sets each one beside this backend's. The NumPy-seeded deterministic runs
(``--start numpy``) are in ``iris_numpy`` and ``stroke_numpy``.
"""


def cells(ctx, demo: str, starter, data_file=None) -> dict:
    """Run ``demo``'s cells ("iris" or "stroke") for ``ctx.edition`` with ``starter``; the
    caller runs the edition's preamble first (kclf.demos.start.preamble)."""
    if demo == "iris":
        from kclf.demos import iris

        return iris.cells(ctx, starter, ctx.edition)
    if demo == "stroke":
        from kclf.demos import stroke

        return stroke.cells(ctx, starter, data_file, ctx.edition)
    raise ValueError(f"unknown demo {demo!r}; expected iris or stroke")
