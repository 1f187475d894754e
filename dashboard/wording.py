"""Experiment results in sentences a marketer reads (plain functions over marts.experiment_results rows).

The sentences are Markdown (st.markdown, st.success, ...). Experiment ids and variant names come from clients: they
go in through md_escape or md_code (ingestion.markup), cut at NAME_CHARS, so they show as sent and inject nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from ingestion.markup import md_code, md_escape
from live.segment_sizes import SegmentSizes

# A sample-ratio mismatch is flagged at this p-value when the mart has no has_sample_ratio_mismatch column: strict,
# because with many users tiny imbalances are "significant" while a real assignment bug gives p-values far below.
SRM_ALPHA = 0.001
NAME_CHARS = 60  # a variant or experiment name in a sentence


def srm_sentence(rows: pd.DataFrame) -> tuple[bool, str]:
    """(ok, sentence) about whether users split between the variants as planned."""
    p_value = rows["srm_p_value"].iloc[0]
    if pd.isna(p_value):
        return True, "Traffic split: not checked yet."
    if "is_planned_variant" in rows.columns:  # the check is over the planned variants only
        rows = rows[rows["is_planned_variant"].ne(False)]
    counts = ", ".join(f"{_name(row.variant)} {row.users:,}" for row in rows.itertuples())
    if "planned_share" in rows.columns and rows["planned_share"].notna().all():
        counts += "; planned " + "/".join(f"{share:.0%}" for share in rows["planned_share"])
    # the mart's own verdict (its alpha is a dbt var) when it has one
    mismatch = rows["has_sample_ratio_mismatch"].iloc[0] if "has_sample_ratio_mismatch" in rows.columns else None
    if bool(mismatch) if mismatch is not None and pd.notna(mismatch) else p_value < SRM_ALPHA:
        return False, (
            f"Traffic split is off from the plan ({counts}; check p = {_p(p_value)}): users did not land in the "
            "variants as planned, so something in assignment or tracking is wrong. Don't act on these results "
            "until it is fixed."
        )
    return True, f"Traffic split as planned ({counts}; check p = {_p(p_value)})."


def unplanned_sentence(rows: pd.DataFrame) -> str | None:
    """A warning about variants the experiment's plan does not name (None when there are none, or the mart is older
    than is_planned_variant). Variant names come from clients: they are shown as code, at most 60 characters."""
    if "is_planned_variant" not in rows.columns:
        return None
    unplanned = rows[rows["is_planned_variant"].eq(False)]
    if unplanned.empty:
        return None
    names = ", ".join(f"{_code(row.variant)} ({int(row.users):,} users)" for row in unplanned.head(5).itertuples())
    if len(unplanned) > 5:
        names += f" and {len(unplanned) - 5} more rows"
    total = int(unplanned["users"].sum())
    return (
        f"Unplanned variants: {total:,} exposed users are in variants the plan does not name ({names}). They are "
        "shown with their own counts but left out of the traffic-split check and not compared with control; a "
        "client may be sending wrong variant names."
    )


def planned_experiment_sentence(rows: pd.DataFrame) -> str | None:
    """A note when the experiment is not in seed experiments, or its seed row is malformed (None otherwise)."""
    notes = []
    if "is_planned_experiment" in rows.columns and rows["is_planned_experiment"].eq(False).all():
        notes.append(
            "This experiment is not in the experiments seed: it is read with the defaults (goal order_completed, "
            "7 days, control `control`, equal split)."
        )
    if "config_error" in rows.columns and rows["config_error"].notna().any():
        notes.append(f"Its seed row has a problem: {md_escape(rows['config_error'].dropna().iloc[0], 300)}.")
    return " ".join(notes) or None


def _name(value: object) -> str:
    """A client-sent name as Markdown text that shows literally."""
    return md_escape(value, NAME_CHARS)


def _code(value: object) -> str:
    """A client-sent name as a code span."""
    return md_code(value, NAME_CHARS)


def _p(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 else f"{value:.1g}"


def power_sentence(rows: pd.DataFrame) -> tuple[bool, str]:
    """(enough, sentence) about whether the experiment has enough users to read (its planned variants)."""
    if "is_planned_variant" in rows.columns and rows["is_planned_variant"].ne(False).any():
        rows = rows[rows["is_planned_variant"].ne(False)]
    smallest = rows.loc[rows["users"].idxmin()]
    if bool(rows["is_underpowered"].any()):
        return False, (
            f"Not enough users yet: the smallest variant ({_name(smallest['variant'])}) has "
            f"{int(smallest['users']):,} users. "
            "Wait for more before deciding; differences now are mostly chance."
        )
    return True, f"Enough users to read (smallest variant: {int(smallest['users']):,})."


def lift_sentence(row: pd.Series, control: pd.Series | None) -> str:
    """What one non-control variant did against control."""
    versus = "" if control is None else f" against {control['conversion_rate']:.1%} for {_name(control['variant'])}"
    head = f"**{_name(row['variant'])}** converts at {row['conversion_rate']:.1%}{versus}"
    planned = row.get("is_planned_variant", True)
    if pd.notna(planned) and not bool(planned):
        return (
            f"**{_name(row['variant'])}** (unplanned variant, {int(row['users']):,} users) converts at "
            f"{row['conversion_rate']:.1%}; not a planned variant, so not compared with control."
        )
    if pd.isna(row["lift_vs_control"]):
        return head + "; no lift computed yet."
    interval = f"{row['lift_vs_control']:+.1%} (95% interval {row['lift_ci_low']:+.1%} to {row['lift_ci_high']:+.1%})"
    if pd.notna(row["lift_ci_low"]) and row["lift_ci_low"] > 0:
        return f"{head}: {interval}. Better than control."
    if pd.notna(row["lift_ci_high"]) and row["lift_ci_high"] < 0:
        return f"{head}: {interval}. Worse than control."
    return f"{head}: {interval}. The interval includes zero: no clear difference."


def experiment_summary(rows: pd.DataFrame) -> list[str]:
    """Sentences for one experiment's rows: traffic split, enough users, then each variant's lift."""
    control_rows = rows[rows["is_control"]]
    control = control_rows.iloc[0] if not control_rows.empty else None
    sentences = [srm_sentence(rows)[1], power_sentence(rows)[1]]
    sentences += [lift_sentence(row, control) for _, row in rows[~rows["is_control"]].iterrows()]
    return sentences


DECISION_HEADLINES = {
    "ship": "Ship {variant}",
    "keep running": "Keep running",
    "stop: sample ratio mismatch": "Stop: the traffic split is broken",
    "stop: guardrail breached": "Stop: a guardrail is breached",
    "stop: no effect of target size": "Stop: no effect of the size you aimed for",
}


def decision_sentence(decision: pd.Series) -> tuple[str, str]:
    """(tone: success / warning / error, sentence) for one row of marts.experiment_decisions."""
    kind = decision["decision"]
    variant = decision["decision_variant"] if pd.notna(decision["decision_variant"]) else ""
    headline = DECISION_HEADLINES.get(kind, str(kind)).format(variant=_code(variant))
    reason = md_escape(decision["decision_reason"], 400) if pd.notna(decision["decision_reason"]) else ""
    tone = "success" if kind == "ship" else "warning" if kind == "keep running" else "error"
    days = int(decision["exposure_days"]) if pd.notna(decision["exposure_days"]) else 0
    sample = f"{int(decision['users']):,} users exposed on {days:,} days"
    return tone, f"**Decision: {headline}.** {reason[:1].upper()}{reason[1:]} ({sample}.)"


CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
ADJUSTMENTS = {
    "cuped": "CUPED (the same metric before exposure)",
    "cupac": "CUPAC (a model of the metric from what users did before exposure)",
}


def estimate_interval(row: pd.Series) -> tuple[float, float]:
    """The fixed-horizon 95% interval of the row's estimate (raw, CUPED or CUPAC)."""
    prefix = {"cuped": "cuped_ci", "cupac": "cupac_ci"}.get(str(row["estimate"]), "lift_ci")
    return row.get(f"{prefix}_low", float("nan")), row.get(f"{prefix}_high", float("nan"))


GUARDRAIL_WORDS = {
    "breached": "breached: worse than its tolerance",
    "within tolerance": "within tolerance",
    "not yet known": "not yet known",
}


def metric_sentence(row: pd.Series) -> str:
    """One metric of one variant against control: the estimate, its fixed and always-valid intervals, the
    corrected p-value, CUPED's variance reduction and, for a guardrail, its status."""
    role = str(row["role"]) if pd.notna(row["role"]) else "metric"
    head = f"**{_name(row['metric'])}** ({role}, {_name(row['variant'])})"
    if pd.isna(row["estimate_lift"]):
        return f"{head}: not computed yet (no users with the metric in control)."
    parts = [f"{row['estimate_lift']:+.1%}"]
    low, high = estimate_interval(row)
    if pd.notna(low):
        parts.append(f"95% interval {low:+.1%} to {high:+.1%}")
    if pd.notna(row["sequential_ci_low"]):
        parts.append(
            f"always-valid {row['sequential_ci_low']:+.1%} to {row['sequential_ci_high']:+.1%} (safe to read daily)"
        )
    if pd.notna(row["adjusted_p_value"]):
        correction = CORRECTION_NAMES.get(str(row["correction"]), str(row["correction"]))
        parts.append(f"p = {_p(row['adjusted_p_value'])} after the {correction} correction")
    text = f"{head}: {parts[0]} ({'; '.join(parts[1:])})."
    reduction = row.get("cupac_variance_reduction") if row["estimate"] == "cupac" else row["variance_reduction"]
    method = ADJUSTMENTS.get(str(row["estimate"]))
    if method and pd.notna(reduction):
        if reduction >= 0.005:
            text += f" {method} cut the variance by {reduction:.0%} (raw lift {row['lift']:+.1%})."
        else:
            text += f" {method} had nothing to use: what users did before exposure does not predict it here."
    if role == "guardrail" and pd.notna(row["guardrail_status"]):
        text += f" Guardrail {GUARDRAIL_WORDS.get(row['guardrail_status'], row['guardrail_status'])}."
    return text


# --- funnels and paths ------------------------------------------------------------------------------------------


ORDERING_WORDS = {
    "sequential": "each step after the previous one, other events allowed in between",
    "strict": "each step the very next event after the previous one",
    "any": "the steps in any order; step k = k of them done",
}


def percent(value: object) -> str:
    """A share as '12.3%', or 'n/a' when there is none."""
    return "n/a" if value is None or pd.isna(value) else f"{float(value):.1%}"


def duration(seconds: object) -> str:
    """A time span in the unit that reads best: '45 s', '12 min', '3.5 h', '2.1 days'."""
    if seconds is None or pd.isna(seconds):
        return "n/a"
    value = float(seconds)
    if value < 90:
        return f"{value:.0f} s"
    if value < 90 * 60:
        return f"{value / 60:.0f} min"
    if value < 36 * 3600:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} days"


def funnel_sentence(steps: pd.DataFrame, window: str) -> str:
    """How many of the users who entered reached the last step, and within what."""
    ordered = steps.sort_values("step_number")
    first, last = ordered.iloc[0], ordered.iloc[-1]
    sentence = (
        f"Of **{int(first['users']):,}** users who did {md_escape(first['step_name'], NAME_CHARS)}, "
        f"**{int(last['users']):,}** ({percent(last['conversion_from_first'])}) reached "
        f"{md_escape(last['step_name'], NAME_CHARS)} within {window}."
    )
    if "median_seconds_from_entry" in ordered.columns and not pd.isna(last["median_seconds_from_entry"]):
        sentence += f" Half of them took less than {duration(last['median_seconds_from_entry'])}."
    open_users = int(first.get("users_window_open", 0) or 0)
    if open_users:
        sentence += (
            f" {open_users:,} entered too recently for their window to have ended: the last figures may still rise."
        )
    return sentence


def biggest_dropoff_sentence(steps: pd.DataFrame) -> str | None:
    """The step where the most users are lost, in words."""
    ordered = steps.sort_values("step_number").reset_index(drop=True)
    if len(ordered) < 2:
        return None
    lost = ordered["users"].shift(1) - ordered["users"]
    worst = int(lost.iloc[1:].idxmax())
    if pd.isna(lost.iloc[worst]) or lost.iloc[worst] <= 0:
        return None
    return (
        f"The biggest loss is between {md_escape(ordered.loc[worst - 1, 'step_name'], NAME_CHARS)} and "
        f"{md_escape(ordered.loc[worst, 'step_name'], NAME_CHARS)}: {int(lost.iloc[worst]):,} users "
        f"({percent(1 - ordered.loc[worst, 'conversion_from_previous'])} of those who got that far)."
    )


def _clock(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%H:%M:%S} UTC"


def live_segments_caption(sizes: SegmentSizes, cache_seconds: float) -> str:
    """What the live segments' figures are, and how they differ from the rest of the Segments page."""
    applied = (
        f"{sizes.events_applied:,} events applied by the live consumer since its state was empty"
        if sizes.events_applied
        else "the live consumer has applied no event here yet (`make dev` runs it)"
    )
    return (
        f"**Live**: read from Redis at {_clock(sizes.as_of_ms)} (at most {cache_seconds:g} s before this page load): "
        "seconds old, unlike the rest of this page (the serving copy, as of the line at the top); the filters do not "
        "apply. Members: users in the segment now; entries and exits by event time, in the last hour and 24 hours. "
        f"{applied[0].upper()}{applied[1:]}."
    )


def live_partial_sentence(sizes: SegmentSizes) -> str | None:
    """A note when the bounded read of the transitions stream did not reach back over every window (None when it
    did)."""
    if sizes.read_back_to_ms is None or not sizes.partial_windows:
        return None
    spans = {"1h": "last hour", "24h": "last 24 hours"}
    windows = " and the ".join(spans.get(window, window) for window in sizes.partial_windows)
    return (
        f"Only the newest {sizes.transitions_read:,} transitions (entries, exits and abandoned carts) were read: they "
        f"go back to {_clock(sizes.read_back_to_ms)}, so over the {windows} there may be more entries and exits "
        "than shown."
    )
