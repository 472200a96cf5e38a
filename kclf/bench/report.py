"""``kclf bench``'s verdicts and tables: bench.json's content and bench.md (no Keras)."""

from __future__ import annotations

import os

REFERENCE = "numpy"
TARGET_SPE1, TARGET_SPE_MULTI = 0.95, 0.90  # traced / plain steps/s, steady state
TARGET_FIT = 0.95  # plain / traced wall time: whole fits of 300 and 3,000 steps, second fits
WHOLE_FIT_TARGET_STEPS = (300, 3000)
MEMORY_OVERHEAD_MIB = 64  # the fixed allowance of the memory target: a compile, Keras's data adapter...


def assemble(workers: list[dict], memory: list[dict], machine: dict, settings: dict,
             fits: list[dict] | None = None, demos: list[dict] | None = None) -> dict:
    """bench.json's content: every figure, the targets' verdicts and the machine."""
    verdicts = []
    for f in fits or []:
        for row in f["whole_fit"]:
            row["target"] = TARGET_FIT if row["steps"] in WHOLE_FIT_TARGET_STEPS else None
            row["meets_target"] = None if row["target"] is None else bool(row["ratio"] >= TARGET_FIT)
            if row["target"] is not None:
                verdicts.append(row["meets_target"])
        second = f["second_fit"]
        second["target"], second["meets_target"] = TARGET_FIT, bool(second["ratio"] >= TARGET_FIT)
        verdicts.append(second["meets_target"])
    for w in workers:
        for c in w["cases"]:
            if w["backend"] == REFERENCE:
                c["target"] = None
                continue
            c["target"] = TARGET_SPE1 if c["steps_per_execution"] == 1 else TARGET_SPE_MULTI
            c["meets_target"] = bool(c["ratio"]["median"] >= c["target"] and c["every_step_recorded"])
            verdicts.append(c["meets_target"])
    pairs: dict[str, dict] = {}
    for m in memory:
        pairs.setdefault(m["backend"], {})["traced" if m["traced"] else "plain"] = m
    memory_rows = []
    for backend, pair in pairs.items():
        traced = pair.get("traced")
        if traced is None:
            continue
        steps, params = traced["steps"], traced["params"]
        # What the trace records per step, as float32: weights before, gradient and weights
        # after for each parameter, the loss and the learning rate.
        raw_mib = steps * (3 * params + 2) * 4 / 1024**2
        meta_mib = steps * 3 * 8 / 1024**2  # step, epoch, batch as int64
        limit = 2 * raw_mib + MEMORY_OVERHEAD_MIB
        plain = pair.get("plain")
        row = {
            "backend": backend,
            "steps": steps,
            "steps_recorded": traced.get("steps_recorded"),
            "raw_float32_mib": raw_mib,
            "meta_int64_mib": meta_mib,
            "traced_peak_growth_mib": traced["peak_growth_mib"],
            "plain_peak_growth_mib": plain["peak_growth_mib"] if plain else None,
            "trace_cost_mib": traced["peak_growth_mib"] - plain["peak_growth_mib"] if plain else None,
            "limit_mib": limit,
            "fixed_overhead_mib": MEMORY_OVERHEAD_MIB,
            "within_limit": bool(traced["peak_growth_mib"] <= limit and traced.get("steps_recorded") == steps),
            "runs": pair,
        }
        verdicts.append(row["within_limit"])
        memory_rows.append(row)
    machine = {**machine, "loadavg_end": list(os.getloadavg())}
    return {
        "settings": settings,
        "machine": machine,
        "versions": {w["backend"]: w["versions"] for w in workers},
        "timing": workers,
        "memory": memory_rows,
        "fits": fits or [],
        "demos": demos or [],
        "all_targets_met": all(verdicts) if verdicts else None,
    }


def _rate(s: dict) -> str:
    def fmt(v):
        return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"

    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def _fit_lines(payload: dict) -> list[str]:
    """What a user feels: whole fits and second fits, then the demos."""
    lines = []
    if payload.get("fits"):
        lines += [
            "| backend | fit (compile included) | plain s | traced s | plain / traced (min–max) | target |",
            "|---|---|---:|---:|---:|---|",
        ]
        for f in payload["fits"]:
            rows = [(f"whole fit, fresh model, {r['steps']:,} steps", r) for r in f["whole_fit"]]
            rows.append((f"second fit, new trace, {f['second_fit']['steps']:,} steps", f["second_fit"]))
            for label, r in rows:
                target = "—" if r.get("target") is None else (
                    f"≥ {r['target']:.2f} {'✓' if r['meets_target'] else '✗'}")
                lines.append(f"| {f['backend']} | {label} | {r['plain_s']:.2f} | {r['traced_s']:.2f} | "
                             f"{r['ratio']:.3f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}) | {target} |")
        lines.append("")
    if payload.get("demos"):
        lines += [
            "| backend | demo | `kclf run` s | the lecture's cells, plain Keras s | kclf adds s |",
            "|---|---|---:|---:|---:|",
        ]
        for d in payload["demos"]:
            ok = "" if d["ok"] else " (failed)"
            lines.append(f"| {d['backend']} | {d['demo']} | {d['kclf_run_s']:.1f}{ok} | "
                         f"{d['plain_cells_s']:.1f} | {d['kclf_run_s'] - d['plain_cells_s']:+.1f} |")
        lines.append("")
    return lines


def render_table(payload: dict) -> str:
    """The markdown tables: whole and second fits, the demos, steps/s per case, memory,
    then the machine."""
    lines = _fit_lines(payload) + [
        "| backend | model | batch | spe | jit | plain steps/s (min–max) | traced steps/s (min–max) "
        "| traced / plain | target | every step | start-up s plain / traced |",
        "|---|---|---:|---:|---|---:|---:|---:|---|---|---:|",
    ]
    for w in payload["timing"]:
        for c in w["cases"]:
            ref = w["backend"] == REFERENCE
            target = "reference" if ref else (
                f"≥ {c['target']:.2f} {'✓' if c['meets_target'] else '✗'}")
            jit = "—" if c["jit_compile"] is None else ("yes" if c["jit_compile"] else "no")
            startup = "—" if ref else (
                f"{c['plain']['startup_s']['median']:.2f} / {c['traced']['startup_s']['median']:.2f}")
            lines.append(
                f"| {w['backend']} | {c['model']} | {c['batch_size']} | "
                f"{'—' if ref else c['steps_per_execution']} | {jit} | "
                f"{_rate(c['plain']['steps_per_s'])} | {_rate(c['traced']['steps_per_s'])} | "
                f"{c['ratio']['median']:.3f} | {target} | "
                f"{'✓' if c['every_step_recorded'] else '✗'} | {startup} |"
            )
    if payload["memory"]:
        lines += [
            "",
            "| backend | steps | raw float32 MiB | peak RSS growth traced MiB | plain MiB "
            "| traced − plain MiB (× raw) | limit MiB (2 × raw + fixed) | within |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for m in payload["memory"]:
            plain = cost = "—"
            if m["plain_peak_growth_mib"] is not None:
                plain = f"{m['plain_peak_growth_mib']:.1f}"
                cost = f"{m['trace_cost_mib']:.1f} ({m['trace_cost_mib'] / m['raw_float32_mib']:.1f}×)"
            lines.append(
                f"| {m['backend']} | {m['steps']:,} | {m['raw_float32_mib']:.1f} | "
                f"{m['traced_peak_growth_mib']:.1f} | {plain} | {cost} | {m['limit_mib']:.1f} | "
                f"{'✓' if m['within_limit'] else '✗'} |"
            )
    mc = payload["machine"]
    vers = {k: v for w in payload["versions"].values() for k, v in w.items()}
    lines += [
        "",
        "Whole and second fits: wall time of build + compile + fit (the second fit: of fit only), "
        "4 → 30 → 1 network, Adam, batch 32, median over the repeats; plain / traced: median of the "
        "paired repeats' ratios, 1.0 = the trace costs nothing. Demos: one fresh process each, "
        "imports included. "
        "steps/s: steps after a fit's first execution / wall time from then until fit returns, "
        "median (min–max) over the repeats; traced / plain: median of the paired repeats' ratios; "
        "start-up: what a fit spends beyond that rate, mostly compiling (a new trace on a model "
        "whose train function has the same hooks compiles nothing); jit: Keras's default for the backend; spe: "
        "steps_per_execution. Memory: growth of peak RSS during one fit, batch 1; raw = steps × "
        "(3 × parameters + loss + learning rate) × 4 bytes.",
        "",
        f"Machine: {mc['cpu']}, {mc['cores']} cores ({mc['cores_available']} available), "
        f"{mc['memory_gib']} GiB; load average {mc['loadavg_start'][0]:.1f} at start, "
        f"{mc['loadavg_end'][0]:.1f} at end. "
        + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
    ]
    return "\n".join(lines) + "\n"
