"""Experiment results in sentences a marketer reads (plain functions over marts.experiment_results rows)."""

from __future__ import annotations

import pandas as pd

# A sample-ratio mismatch is flagged at this p-value when the mart has no has_sample_ratio_mismatch column: strict,
# because with many users tiny imbalances are "significant" while a real assignment bug gives p-values far below.
SRM_ALPHA = 0.001


def srm_sentence(rows: pd.DataFrame) -> tuple[bool, str]:
    """(ok, sentence) about whether users split between the variants as planned."""
    p_value = rows["srm_p_value"].iloc[0]
    if pd.isna(p_value):
        return True, "Traffic split: not checked yet."
    counts = ", ".join(f"{row.variant} {row.users:,}" for row in rows.itertuples())
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


def _p(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 else f"{value:.1g}"


def power_sentence(rows: pd.DataFrame) -> tuple[bool, str]:
    """(enough, sentence) about whether the experiment has enough users to read."""
    smallest = rows.loc[rows["users"].idxmin()]
    if bool(rows["is_underpowered"].any()):
        return False, (
            f"Not enough users yet: the smallest variant ({smallest['variant']}) has {int(smallest['users']):,} users. "
            "Wait for more before deciding; differences now are mostly chance."
        )
    return True, f"Enough users to read (smallest variant: {int(smallest['users']):,})."


def lift_sentence(row: pd.Series, control: pd.Series | None) -> str:
    """What one non-control variant did against control."""
    versus = "" if control is None else f" against {control['conversion_rate']:.1%} for {control['variant']}"
    head = f"**{row['variant']}** converts at {row['conversion_rate']:.1%}{versus}"
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
