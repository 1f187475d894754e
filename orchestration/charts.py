"""Pictures of the marts for the Dagster UI: PNG charts embedded in markdown metadata.

Pure functions of pandas frames (no dagster, no database), so they can be tested alone.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter

LIFECYCLE_COLOURS = {"new": "#2b8cbe", "returning": "#31a354", "resurrecting": "#fdae6b", "dormant": "#de2d26"}


def to_markdown_image(png: bytes, alt: str) -> str:
    """Markdown that shows a PNG inline (Dagster renders data URIs in markdown metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _png(figure: Figure) -> bytes:
    # Figure without pyplot: no global state, no display needed, nothing to close.
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float, height: float):
    figure = Figure(figsize=(width, height))
    return figure, figure.subplots()


def retention_heatmap(cells: pd.DataFrame, title: str, max_cohorts: int = 20, max_periods: int = 16) -> bytes:
    """Cohorts (rows) by period (columns) coloured by retention rate; incomplete cells hatched, not zero.

    cells: cohort_start, period_number, retention_rate, is_complete.
    """
    cohorts = sorted(cells["cohort_start"].unique())[-max_cohorts:]
    shown = cells[cells["cohort_start"].isin(cohorts) & (cells["period_number"] < max_periods)]
    rates = shown.pivot(index="cohort_start", columns="period_number", values="retention_rate")
    complete = shown.pivot(index="cohort_start", columns="period_number", values="is_complete")
    figure, axes = _figure(1.2 + 0.55 * rates.shape[1], 1.0 + 0.32 * rates.shape[0])
    values = rates.to_numpy(dtype=float)
    axes.imshow(np.ma.masked_invalid(values), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (row, column), rate in np.ndenumerate(values):
        if np.isnan(rate):
            continue
        done = bool(complete.iloc[row, column])
        axes.text(column, row, f"{rate:.0%}", ha="center", va="center", fontsize=7,
                  color=("white" if rate > 0.6 else "black"), alpha=(1.0 if done else 0.6))  # fmt: skip
        if not done:
            axes.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, hatch="///", alpha=0.35))
    axes.set_xticks(range(rates.shape[1]), [str(c) for c in rates.columns], fontsize=7)
    axes.set_yticks(range(rates.shape[0]), [str(pd.Timestamp(c).date()) for c in rates.index], fontsize=7)
    axes.set_xlabel("period")
    axes.set_ylabel("cohort")
    axes.set_title(f"{title} (hatched: period not over yet)", fontsize=9)
    return _png(figure)


def retention_curves(cells: pd.DataFrame, average: pd.DataFrame, title: str, max_periods: int = 16) -> bytes:
    """One faint line per cohort over its complete periods and the weighted average curve in bold.

    cells: cohort_start, period_number, retention_rate, is_complete; average: period_number, retention_rate.
    """
    figure, axes = _figure(7, 3.6)
    complete = cells[cells["is_complete"] & (cells["period_number"] < max_periods)]
    for _, cohort in complete.groupby("cohort_start"):
        axes.plot(cohort["period_number"], cohort["retention_rate"], color="#9ecae1", linewidth=0.8)
    average = average[average["period_number"] < max_periods].sort_values("period_number")
    axes.plot(average["period_number"], average["retention_rate"], color="#08519c", linewidth=2.5,
              label="average over complete cells")  # fmt: skip
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("period")
    axes.set_ylabel("retained")
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.legend(fontsize=8)
    axes.set_title(title, fontsize=9)
    return _png(figure)


def lifecycle_bars(lifecycle: pd.DataFrame, title: str, max_periods: int = 26) -> bytes:
    """Stacked bars per period: new, returning, resurrecting above zero, dormant below.

    lifecycle: period_start, status, users.
    """
    table = lifecycle.pivot_table(index="period_start", columns="status", values="users", aggfunc="sum", fill_value=0)
    table = table.sort_index().iloc[-max_periods:]
    labels = [str(pd.Timestamp(p).date()) for p in table.index]
    positions = np.arange(len(labels))
    figure, axes = _figure(8, 3.6)
    bottom = np.zeros(len(labels))
    for status in ("new", "returning", "resurrecting"):
        values = table.get(status, pd.Series(0, index=table.index)).to_numpy()
        axes.bar(positions, values, bottom=bottom, color=LIFECYCLE_COLOURS[status], label=status)
        bottom += values
    dormant = table.get("dormant", pd.Series(0, index=table.index)).to_numpy()
    axes.bar(positions, -dormant, color=LIFECYCLE_COLOURS["dormant"], label="dormant")
    axes.axhline(0, color="black", linewidth=0.6)
    step = max(1, len(labels) // 10)
    axes.set_xticks(positions[::step], labels[::step], fontsize=7, rotation=30)
    axes.set_ylabel("users")
    axes.legend(fontsize=7, ncols=4)
    axes.set_title(title, fontsize=9)
    return _png(figure)


def kpi_trend(kpis: pd.DataFrame, title: str) -> bytes:
    """DAU, WAU and MAU over time with stickiness (DAU/MAU) on a second axis.

    kpis: activity_date, dau, wau, mau, stickiness.
    """
    kpis = kpis.sort_values("activity_date")
    figure, axes = _figure(8, 3.6)
    for column, colour in (("mau", "#08519c"), ("wau", "#3182bd"), ("dau", "#9ecae1")):
        axes.plot(kpis["activity_date"], kpis[column], label=column.upper(), color=colour)
    axes.set_ylabel("active users")
    share = axes.twinx()
    share.plot(kpis["activity_date"], kpis["stickiness"], color="#e6550d", linewidth=0.8, label="DAU/MAU")
    share.yaxis.set_major_formatter(PercentFormatter(1.0))
    share.set_ylim(0, 1)
    lines = axes.get_legend_handles_labels()
    more = share.get_legend_handles_labels()
    axes.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper left")
    figure.autofmt_xdate()
    axes.set_title(title, fontsize=9)
    return _png(figure)
