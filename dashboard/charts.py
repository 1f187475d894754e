"""Altair charts of the dashboard, built from the DataFrames in dashboard.queries (no Streamlit here)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from dashboard import wording

# SVG keeps every mark in the page's DOM, which is what the browser test counts to tell a drawn chart from an
# empty one; vega-embed reads the renderer from the spec's usermeta.
SVG = {"embedOptions": {"renderer": "svg"}}
LIFECYCLE_COLOURS = {"new": "#2ca02c", "returning": "#1f77b4", "resurrecting": "#ff7f0e", "dormant": "#d62728"}
ALERT_COLOUR = "#d62728"
# Name of layers drawn whatever the data (a zero line); the browser test does not count them as data marks.
REFERENCE = "reference"


def _finish(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return chart.properties(usermeta=SVG)


def trend(frame: pd.DataFrame, series: dict[str, str], alerts: pd.DataFrame, *, title: str, y_format: str) -> alt.Chart:
    """Lines of one or more KPI columns over period_start; KPI alerts on those columns as red rings with a rule."""
    long = frame.melt(id_vars=["period_start"], value_vars=list(series), var_name="kpi", value_name="value")
    long["series"] = long["kpi"].map(series)
    base = alt.Chart(long).encode(
        x=alt.X("period_start:T", title=None),
        y=alt.Y("value:Q", title=None, axis=alt.Axis(format=y_format)),
    )
    lines = base.mark_line(point=len(frame) < 40).encode(
        color=alt.Color("series:N", title=None, sort=list(series.values()), legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("period_start:T", title="period"), "series:N", alt.Tooltip("value:Q", format=y_format)],
    )
    layers: list[alt.Chart] = [lines]
    marked = alerts[alerts["kpi"].isin(list(series))] if not alerts.empty else alerts
    if not marked.empty:
        marked = marked.assign(series=marked["kpi"].map(series), what=_alert_words(marked))
        alert_base = alt.Chart(marked)
        layers.append(
            alert_base.mark_rule(color=ALERT_COLOUR, strokeDash=[4, 3], opacity=0.6).encode(x="activity_date:T")
        )
        layers.append(
            alert_base.mark_point(color=ALERT_COLOUR, size=140, strokeWidth=2.5, filled=False).encode(
                x="activity_date:T",
                y="value:Q",
                tooltip=[alt.Tooltip("activity_date:T", title="alert on"), "series:N", "what:N"],
            )
        )
    return _finish(alt.layer(*layers).properties(title=title, height=220))


def _alert_words(alerts: pd.DataFrame) -> pd.Series:
    side = {"up": "above", "down": "below"}
    return alerts.apply(
        lambda row: (
            f"{row['value']:,.4g}, {side.get(row['direction'], row['direction'])} the usual "
            f"{row['band_low']:,.4g} to {row['band_high']:,.4g} (expected {row['expected']:,.4g})"
        ),
        axis=1,
    )


def retention_heatmap(matrix: pd.DataFrame, rate: str, *, grain: str) -> alt.LayerChart:
    """Cohorts (rows) x periods (columns) coloured by rate; incomplete cells grey with a dashed border and '~'."""
    data = matrix.assign(
        cohort=matrix["cohort_start"].dt.strftime("%Y-%m-%d"),
        rate=matrix[rate],
        label=matrix[rate].map(lambda v: f"{v:.0%}") + matrix["is_complete"].map({True: "", False: "~"}),
        state=matrix["is_complete"].map({True: "complete", False: "period not over yet"}),
    )
    cohorts = data["cohort"].nunique()
    periods = data["period_number"].nunique()
    base = alt.Chart(data).encode(
        x=alt.X("period_number:O", title=f"{grain}s since first activity", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("cohort:O", title=f"cohort ({grain} of first activity)", sort="descending"),
        tooltip=[
            alt.Tooltip("cohort:O", title="cohort"),
            alt.Tooltip("period_number:O", title="period"),
            alt.Tooltip("cohort_size:Q", title="cohort size", format=","),
            alt.Tooltip("retained_users:Q", title="active in period", format=","),
            alt.Tooltip("retained_users_unbounded:Q", title="active in period or later", format=","),
            alt.Tooltip("rate:Q", title="rate", format=".1%"),
            alt.Tooltip("state:N", title="cell"),
        ],
    )
    # one rect layer (two filtered layers misalign their bands): colour by rate where complete, grey and dashed not
    cells = base.mark_rect(strokeWidth=1).encode(
        color=alt.condition(
            "datum.is_complete",
            alt.Color(
                "rate:Q",
                title="retention",
                scale=alt.Scale(scheme="blues", domain=[0, 1]),
                legend=alt.Legend(format=".0%"),
            ),
            alt.value("#f2f2f2"),
        ),
        stroke=alt.condition("datum.is_complete", alt.value(None), alt.value("#9e9e9e")),
        strokeDash=alt.condition("datum.is_complete", alt.value([1, 0]), alt.value([3, 2])),
    )
    layers = [cells]
    if cohorts * periods <= 900:  # labels only where they fit
        layers.append(
            base.mark_text(fontSize=10).encode(
                text="label:N",
                color=alt.condition("datum.is_complete && datum.rate > 0.55", alt.value("white"), alt.value("#333")),
            )
        )
    cell = 28 if periods <= 30 else 16
    return _finish(alt.layer(*layers).properties(width=alt.Step(cell), height=alt.Step(20 if cohorts <= 40 else 12)))


def retention_curves(matrix: pd.DataFrame, average: pd.DataFrame, rate: str, *, grain: str) -> alt.LayerChart:
    """One thin line per cohort over its complete cells, and the weighted average as a thick black line."""
    cohorts = matrix[matrix["is_complete"]].assign(cohort=lambda f: f["cohort_start"].dt.strftime("%Y-%m-%d"))
    x = alt.X("period_number:Q", title=f"{grain}s since first activity", axis=alt.Axis(tickMinStep=1))
    y = alt.Y(f"{rate}:Q", title="retention", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1]))
    per_cohort = (
        alt.Chart(cohorts)
        .mark_line(strokeWidth=1, opacity=0.45)
        .encode(
            x=x,
            y=y,
            color=alt.Color("cohort:O", title="cohort", scale=alt.Scale(scheme="viridis"), legend=None),
            tooltip=["cohort:O", "period_number:Q", alt.Tooltip(f"{rate}:Q", format=".1%"), "cohort_size:Q"],
        )
    )
    mean = (
        alt.Chart(average)
        .mark_line(color="black", strokeWidth=3, point=True)
        .encode(
            x=x,
            y=y,
            tooltip=[
                "period_number:Q",
                alt.Tooltip(f"{rate}:Q", title="weighted average", format=".1%"),
                alt.Tooltip("users_completed:Q", title="users in complete cohorts", format=","),
                "cohorts:Q",
            ],
        )
    )
    return _finish(alt.layer(per_cohort, mean).properties(height=320))


def segment_curves(average: pd.DataFrame, rate: str, *, grain: str, title: str) -> alt.Chart:
    """One weighted-average retention curve per segment (dimension value)."""
    return _finish(
        alt.Chart(average)
        .mark_line(point=True)
        .encode(
            x=alt.X("period_number:Q", title=f"{grain}s since first activity", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y(f"{rate}:Q", title="retention", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("segment:N", title=title, legend=alt.Legend(orient="top")),
            tooltip=[
                "segment:N",
                "period_number:Q",
                alt.Tooltip(f"{rate}:Q", format=".1%"),
                alt.Tooltip("users_completed:Q", format=","),
            ],
        )
        .properties(height=320)
    )


def lifecycle_bars(frame: pd.DataFrame, *, grain: str) -> alt.LayerChart:
    """Stacked bars per period: new, returning and resurrecting above zero, dormant below."""
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("period_start:T", title=None),
            y=alt.Y("signed_users:Q", title=f"users per {grain} (dormant below zero)", stack="zero"),
            color=alt.Color(
                "status:N",
                sort=list(LIFECYCLE_COLOURS),
                scale=alt.Scale(domain=list(LIFECYCLE_COLOURS), range=list(LIFECYCLE_COLOURS.values())),
                legend=alt.Legend(orient="top", title=None),
            ),
            order=alt.Order("status_order:Q"),
            tooltip=[alt.Tooltip("period_start:T", title="period"), "status:N", alt.Tooltip("users:Q", format=",")],
        )
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]}), name=REFERENCE).mark_rule(color="#333").encode(y="y:Q")
    return _finish(alt.layer(bars, zero).properties(height=340))


def stickiness_bars(frame: pd.DataFrame) -> alt.LayerChart:
    """Share of the period's active users active on exactly N days (bars) and on at least N days (line)."""
    x = alt.X("active_days:O", title="active days in the period", axis=alt.Axis(labelAngle=0))
    bars = (
        alt.Chart(frame)
        .mark_bar(color="#4c78a8")
        .encode(
            x=x,
            y=alt.Y("share_exactly:Q", title="share of active users", axis=alt.Axis(format=".0%")),
            tooltip=[
                "active_days:O",
                alt.Tooltip("users_exactly:Q", title="exactly N days", format=","),
                alt.Tooltip("share_exactly:Q", format=".1%"),
            ],
        )
    )
    line = (
        alt.Chart(frame)
        .mark_line(color="#f58518", point=True)
        .encode(
            x=x,
            y=alt.Y("share_at_least:Q"),
            tooltip=[
                "active_days:O",
                alt.Tooltip("users_at_least:Q", title="N days or more", format=","),
                alt.Tooltip("share_at_least:Q", format=".1%"),
            ],
        )
    )
    return _finish(alt.layer(bars, line).properties(height=280))


def bars(
    frame: pd.DataFrame, category: str, value: str, *, title: str, value_format: str = ",.0f", sort: list | str = "-x"
) -> alt.Chart:
    """Horizontal bars of one value per category, labelled."""
    counts = value_format.endswith(".0f")
    base = alt.Chart(frame).encode(
        y=alt.Y(f"{category}:N", title=None, sort=sort, axis=alt.Axis(labelLimit=320)),
        x=alt.X(f"{value}:Q", title=title, axis=alt.Axis(format=value_format, tickMinStep=1 if counts else None)),
        tooltip=[f"{category}:N", alt.Tooltip(f"{value}:Q", format=value_format)],
    )
    labels = base.mark_text(align="left", dx=3, fontSize=11).encode(text=alt.Text(f"{value}:Q", format=value_format))
    return _finish(alt.layer(base.mark_bar(color="#4c78a8"), labels).properties(height=alt.Step(26)))


def cluster_heatmap(index: pd.DataFrame) -> alt.LayerChart:
    """Clusters x features coloured by the cluster's mean relative to all users' (1 = average)."""
    data = index.assign(log_index=np.log2(index["index"].clip(lower=0.05)))
    base = alt.Chart(data).encode(
        x=alt.X("feature:N", title=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("cluster_name:N", title=None),
        tooltip=[
            "cluster_name:N",
            "feature:N",
            alt.Tooltip("value:Q", title="cluster mean", format=",.3g"),
            alt.Tooltip("overall:Q", title="all users", format=",.3g"),
            alt.Tooltip("index:Q", format=".2f"),
        ],
    )
    rect = base.mark_rect().encode(
        color=alt.Color(
            "log_index:Q",
            title="vs all users",
            scale=alt.Scale(scheme="redblue", domainMid=0, domain=[-2, 2], clamp=True),
            legend=alt.Legend(values=[-2, -1, 0, 1, 2], labelExpr="pow(2, datum.value) + 'x'"),
        )
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("value:Q", format=",.3g"),
        color=alt.condition("abs(datum.log_index) > 1.2", alt.value("white"), alt.value("#333")),
    )
    return _finish(alt.layer(rect, text).properties(height=alt.Step(30), width=alt.Step(90)))


def score_histogram(frame: pd.DataFrame, tiers: list[str]) -> alt.Chart:
    """Users per churn-probability bin, coloured by risk tier."""
    return _finish(
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title="churn probability", axis=alt.Axis(format=".0%")),
            x2="bin_end:Q",
            y=alt.Y("users:Q", title="users", stack="zero"),
            color=alt.Color(
                "risk_tier:N",
                title="risk tier",
                sort=tiers,
                scale=alt.Scale(scheme="orangered"),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("bin_start:Q", format=".0%", title="from"),
                alt.Tooltip("bin_end:Q", format=".0%", title="to"),
                "risk_tier:N",
                alt.Tooltip("users:Q", format=","),
            ],
        )
        .properties(height=260)
    )


def variant_rates(results: pd.DataFrame) -> alt.LayerChart:
    """Conversion rate of each variant with its 95% interval."""
    data = results.assign(arm=results["variant"] + results["is_control"].map({True: " (control)", False: ""}))
    y = alt.Y("arm:N", title=None, sort=None, axis=alt.Axis(labelLimit=320))
    rule = (
        alt.Chart(data)
        .mark_rule(strokeWidth=2, color="#4c78a8")
        .encode(
            y=y,
            x=alt.X("ci_low:Q", title="conversion rate (95% interval)", axis=alt.Axis(format=".1%")),
            x2="ci_high:Q",
        )
    )
    point = (
        alt.Chart(data)
        .mark_point(filled=True, size=90, color="#4c78a8")
        .encode(
            y=y,
            x="conversion_rate:Q",
            tooltip=[
                "arm:N",
                alt.Tooltip("users:Q", format=","),
                alt.Tooltip("conversions:Q", format=","),
                alt.Tooltip("conversion_rate:Q", format=".2%"),
                alt.Tooltip("ci_low:Q", format=".2%"),
                alt.Tooltip("ci_high:Q", format=".2%"),
            ],
        )
    )
    return _finish(alt.layer(rule, point).properties(height=alt.Step(34)))


def forest(results: pd.DataFrame) -> alt.LayerChart:
    """Lift of each variant over control with its 95% interval; the dashed line is no difference."""
    data = results[~results["is_control"]].assign(
        label=lambda f: f["experiment_id"] + " · " + f["variant"],
        verdict=lambda f: f.apply(_lift_verdict, axis=1),
    )
    y = alt.Y("label:N", title=None, sort=None, axis=alt.Axis(labelLimit=320))
    x = alt.X("lift_ci_low:Q", title="lift vs control (95% interval)", axis=alt.Axis(format="+.0%"))
    rule = (
        alt.Chart(data)
        .mark_rule(strokeWidth=2)
        .encode(
            y=y,
            x=x,
            x2="lift_ci_high:Q",
            color=alt.Color(
                "verdict:N",
                title=None,
                legend=alt.Legend(orient="top"),
                scale=alt.Scale(
                    domain=["better", "worse", "no clear difference"], range=["#2ca02c", "#d62728", "#7f7f7f"]
                ),
            ),
        )
    )
    point = (
        alt.Chart(data)
        .mark_point(filled=True, size=90)
        .encode(
            y=y,
            x="lift_vs_control:Q",
            color="verdict:N",
            tooltip=[
                "label:N",
                alt.Tooltip("lift_vs_control:Q", format="+.1%"),
                alt.Tooltip("lift_ci_low:Q", format="+.1%"),
                alt.Tooltip("lift_ci_high:Q", format="+.1%"),
                alt.Tooltip("p_value:Q", format=".3f"),
            ],
        )
    )
    zero = (
        alt.Chart(pd.DataFrame({"x": [0]}), name=REFERENCE).mark_rule(strokeDash=[4, 3], color="#333").encode(x="x:Q")
    )
    return _finish(alt.layer(rule, point, zero).properties(height=alt.Step(34)))


def metric_forest(rows: pd.DataFrame) -> alt.LayerChart:
    """Each metric's lift per variant: the thick line the 95% interval read once, the thin one the always-valid
    interval (safe to read daily); coloured by the always-valid one, the measure the decision reads."""
    data = rows.assign(
        label=lambda f: f["metric"] + " · " + f["variant"] + " (" + f["role"].fillna("metric") + ")",
        fixed_low=lambda f: f.apply(lambda r: wording.estimate_interval(r)[0], axis=1),
        fixed_high=lambda f: f.apply(lambda r: wording.estimate_interval(r)[1], axis=1),
        verdict=lambda f: f.apply(
            lambda r: _lift_verdict(r, "sequential_ci_low", "sequential_ci_high", r["direction"]), axis=1
        ),
    )
    y = alt.Y("label:N", title=None, sort=None, axis=alt.Axis(labelLimit=320))
    color = alt.Color(
        "verdict:N",
        title=None,
        legend=alt.Legend(orient="top"),
        scale=alt.Scale(domain=["better", "worse", "no clear difference"], range=["#2ca02c", "#d62728", "#7f7f7f"]),
    )
    always_valid = (
        alt.Chart(data)
        .mark_rule(strokeWidth=1.5, opacity=0.6)
        .encode(
            y=y,
            x=alt.X("sequential_ci_low:Q", title="lift vs control: 95% (thick), always-valid (thin)",
                    axis=alt.Axis(format="+.0%")),
            x2="sequential_ci_high:Q",
            color=color,
        )
    )  # fmt: skip
    fixed = alt.Chart(data).mark_rule(strokeWidth=5).encode(y=y, x="fixed_low:Q", x2="fixed_high:Q", color=color)
    point = (
        alt.Chart(data)
        .mark_point(filled=True, size=90, color="black")
        .encode(
            y=y,
            x="estimate_lift:Q",
            tooltip=[
                "label:N",
                "estimate:N",
                alt.Tooltip("estimate_lift:Q", format="+.1%"),
                alt.Tooltip("fixed_low:Q", format="+.1%"),
                alt.Tooltip("fixed_high:Q", format="+.1%"),
                alt.Tooltip("sequential_ci_low:Q", format="+.1%"),
                alt.Tooltip("sequential_ci_high:Q", format="+.1%"),
                alt.Tooltip("adjusted_p_value:Q", format=".3f"),
                alt.Tooltip("variance_reduction:Q", format=".0%"),
            ],
        )
    )
    zero = (
        alt.Chart(pd.DataFrame({"x": [0]}), name=REFERENCE).mark_rule(strokeDash=[4, 3], color="#333").encode(x="x:Q")
    )
    return _finish(alt.layer(always_valid, fixed, point, zero).properties(height=alt.Step(30)))


def _lift_verdict(
    row: pd.Series, low: str = "lift_ci_low", high: str = "lift_ci_high", direction: object = "increase"
) -> str:
    """better / worse / no clear difference from an interval of the lift (lower is better for direction decrease)."""
    sign = -1 if str(direction) == "decrease" else 1
    if pd.notna(row[low]) and (row[low] > 0 if sign > 0 else row[high] < 0):
        return "better"
    if pd.notna(row[high]) and (row[high] < 0 if sign > 0 else row[low] > 0):
        return "worse"
    return "no clear difference"


def file_rows(manifest: pd.DataFrame) -> alt.Chart:
    """Rows per landing file: loaded, duplicate and rejected stacked."""
    long = manifest.melt(
        id_vars=["file_name"],
        value_vars=["rows_loaded", "rows_duplicate", "rows_rejected"],
        var_name="outcome",
        value_name="rows",
    )
    long["outcome"] = long["outcome"].str.removeprefix("rows_")
    return _finish(
        alt.Chart(long)
        .mark_bar()
        .encode(
            y=alt.Y("file_name:N", title=None, sort=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X("rows:Q", title="rows", stack="zero"),
            color=alt.Color(
                "outcome:N",
                scale=alt.Scale(domain=["loaded", "duplicate", "rejected"], range=["#4c78a8", "#bab0ac", "#e45756"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["file_name:N", "outcome:N", alt.Tooltip("rows:Q", format=",")],
        )
        .properties(height=alt.Step(22))
    )


def _step_label(frame: pd.DataFrame) -> pd.Series:
    return frame["step_number"].astype(int).astype(str) + ". " + frame["step_name"].astype(str)


def funnel_bars(steps: pd.DataFrame) -> alt.LayerChart:
    """Users at each step of a funnel (everyone) as bars, labelled with the conversion from step 1 and from the
    previous step."""
    data = steps.assign(
        step=_step_label(steps),
        label=[
            f"{wording.percent(first)} of entered" + ("" if n == 1 else f" · {wording.percent(prev)} of previous")
            for n, first, prev in zip(
                steps["step_number"], steps["conversion_from_first"], steps["conversion_from_previous"], strict=True
            )
        ],
    )
    order = list(data.sort_values("step_number")["step"])
    base = alt.Chart(data).encode(
        x=alt.X("step:N", title=None, sort=order, axis=alt.Axis(labelAngle=0, labelLimit=220)),
        y=alt.Y("users:Q", title="users", axis=alt.Axis(format=",.0f")),
        tooltip=[
            "step:N", alt.Tooltip("users:Q", format=",.0f"), alt.Tooltip("conversion_from_first:Q", format=".1%"),
            alt.Tooltip("conversion_from_previous:Q", format=".1%"),
        ],
    )  # fmt: skip
    bars_layer = base.mark_bar(color="#4c78a8")
    labels = base.mark_text(dy=-8, fontSize=11).encode(text="label:N")
    return _finish(alt.layer(bars_layer, labels).properties(height=320))


def funnel_breakdown_bars(steps: pd.DataFrame) -> alt.Chart:
    """Conversion from step 1 at each step, one bar per breakdown value."""
    data = steps.assign(step=_step_label(steps))
    order = list(data.drop_duplicates("step_number").sort_values("step_number")["step"])
    return _finish(
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("step:N", title=None, sort=order, axis=alt.Axis(labelAngle=0, labelLimit=220)),
            xOffset=alt.XOffset("breakdown_value:N"),
            y=alt.Y("conversion_from_first:Q", title="conversion from step 1", axis=alt.Axis(format=".0%")),
            color=alt.Color("breakdown_value:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=[
                "step:N",
                "breakdown_value:N",
                alt.Tooltip("users:Q", format=",.0f"),
                alt.Tooltip("entered_users:Q", format=",.0f"),
                alt.Tooltip("conversion_from_first:Q", format=".1%"),
            ],
        )
        .properties(height=320)
    )


# nodes that stand for no event go below the events of their step
_PLACEHOLDER_NODES = ("(other)", "(invalid)", "(end)", "(start)")


def path_flow(steps: pd.DataFrame, transitions: pd.DataFrame, *, height: int = 420) -> alt.LayerChart:
    """A Sankey-style flow of a path: each step a column of nodes (height = users), each flow between consecutive
    steps a band as wide as its users, drawn from its own slot of the node it leaves to its slot of the node it
    reaches."""
    gap = max(1, int(steps.groupby("step_number")["users"].sum().max() * 0.02))
    nodes = steps.assign(
        placeholder=steps["node"].isin(_PLACEHOLDER_NODES),
    ).sort_values(["step_number", "placeholder", "users", "node"], ascending=[True, True, False, True])
    nodes["y0"] = nodes.groupby("step_number")["users"].cumsum() - nodes["users"]
    nodes["y0"] = nodes["y0"] + nodes.groupby("step_number").cumcount() * gap
    nodes["y1"] = nodes["y0"] + nodes["users"]
    domain = float(nodes["y1"].max())
    position = nodes.set_index(["step_number", "node"])
    links = transitions.copy()
    links["from_rank"] = [
        position.loc[(s, n), "y0"] for s, n in zip(links["from_step"], links["from_node"], strict=True)
    ]
    links["to_rank"] = [position.loc[(s, n), "y0"] for s, n in zip(links["to_step"], links["to_node"], strict=True)]
    # a flow's slot in the node it leaves (ordered by where it goes) and in the node it reaches (by where it came from)
    links = links.sort_values(["from_step", "from_node", "to_rank"])
    links["out_y"] = (
        links["from_rank"] + links.groupby(["from_step", "from_node"])["users"].cumsum() - links["users"] / 2
    )
    links = links.sort_values(["to_step", "to_node", "from_rank"])
    links["in_y"] = links["to_rank"] + links.groupby(["to_step", "to_node"])["users"].cumsum() - links["users"] / 2
    links["link"] = range(len(links))
    ends = pd.concat(
        [
            links.assign(x=links["from_step"] + 0.08, y=links["out_y"])[
                ["link", "x", "y", "users", "from_node", "to_node"]
            ],
            links.assign(x=links["to_step"] - 0.08, y=links["in_y"])[
                ["link", "x", "y", "users", "from_node", "to_node"]
            ],
        ]
    )
    y_scale = alt.Scale(domain=[domain, 0])
    x_scale = alt.Scale(domain=[nodes["step_number"].min() - 0.2, nodes["step_number"].max() + 0.6], nice=False)
    flows = (
        alt.Chart(ends)
        .mark_line(opacity=0.35, color="#4c78a8", strokeCap="butt", clip=True)
        .encode(
            x=alt.X("x:Q", scale=x_scale, title="steps from the anchor", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("y:Q", scale=y_scale, axis=None),
            detail="link:N",
            # a little thinner than the nodes: Streamlit may draw the plot somewhat shorter than `height`
            strokeWidth=alt.StrokeWidth(
                "users:Q", scale=alt.Scale(domain=[0, domain], range=[0, height * 0.75]), legend=None
            ),
            tooltip=["from_node:N", "to_node:N", alt.Tooltip("users:Q", format=",.0f")],
        )
    )
    node_data = nodes.assign(x0=nodes["step_number"] - 0.08, x1=nodes["step_number"] + 0.08)
    boxes = (
        alt.Chart(node_data)
        .mark_rect(color="#1f4e79")
        .encode(
            x=alt.X("x0:Q", scale=x_scale),
            x2="x1:Q",
            y=alt.Y("y0:Q", scale=y_scale),
            y2="y1:Q",
            tooltip=[
                "step_number:Q",
                "node:N",
                alt.Tooltip("users:Q", format=",.0f"),
                alt.Tooltip("share_of_users:Q", format=".1%"),
            ],
        )
    )
    names = (
        alt.Chart(node_data.assign(middle=(node_data["y0"] + node_data["y1"]) / 2))
        .mark_text(align="left", dx=4, fontSize=10)
        .encode(
            x=alt.X("x1:Q", scale=x_scale),
            y=alt.Y("middle:Q", scale=y_scale),
            text="node:N",
        )
    )
    return _finish(alt.layer(flows, boxes, names).properties(height=height))


def funnel_trend(trend: pd.DataFrame) -> alt.LayerChart:
    """Conversion from step 1 to the last step by cohort; cohorts whose windows are still open drawn hollow."""
    data = trend.assign(state=trend["is_complete"].map({True: "complete", False: "window still open"}))
    base = alt.Chart(data).encode(
        x=alt.X("cohort_start:T", title=None),
        y=alt.Y("conversion_from_first:Q", title="converted through the last step", axis=alt.Axis(format=".0%")),
        tooltip=[
            alt.Tooltip("cohort_start:T", title="cohort"), alt.Tooltip("entered_users:Q", format=",.0f"),
            alt.Tooltip("converted_users:Q", format=",.0f"), alt.Tooltip("conversion_from_first:Q", format=".1%"),
            "state:N",
        ],
    )  # fmt: skip
    line = base.mark_line(color="#4c78a8")
    points = base.mark_point(size=40).encode(
        fill=alt.Fill("state:N", scale=alt.Scale(domain=["complete", "window still open"], range=["#4c78a8", "white"]),
                      legend=alt.Legend(orient="top", title=None)),
        color=alt.value("#4c78a8"),
    )  # fmt: skip
    return _finish(alt.layer(line, points).properties(height=260))
