"""Compare the tables dbt built on DuckDB with the ones it built on Spark, row for row.

Spark's tables are read from their Parquet files with DuckDB (spark_warehouse.layout). Rows are matched after
sorting both sides by every column (doubles rounded for the sort only); doubles then compare within a relative
tolerance (`RTOL`: the engines add in different orders, so sums of doubles differ in their last bits), everything
else exactly. Timestamps compare as UTC instants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from spark_warehouse.layout import SPARK_ONLY_COLUMNS, managed_table_dir

RTOL = 1e-9
ATOL = 1e-12
SORT_DIGITS = 6
# When the build ran, not what it computed: staging time and the per-user models' watermark.
RUN_TIME_COLUMNS = ("staged_at", "staged_through")
COMPARED_SCHEMAS = ("seeds", "staging", "intermediate", "marts")


@dataclass
class TableComparison:
    """How one table compares: equal, or the first differences found."""

    table: str
    duckdb_rows: int
    spark_rows: int
    differences: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.differences


def compare_table(con: duckdb.DuckDBPyConnection, data_dir: Path, schema: str, table: str) -> TableComparison:
    """Compare `schema.table` in the DuckDB warehouse `con` holds with Spark's copy under `data_dir`."""
    folder = managed_table_dir(data_dir, schema, table)
    excluded = _run_time(con, schema, table)
    ours = con.sql(f'select * {f"exclude ({excluded})" if excluded else ""} from "{schema}"."{table}"')
    ours = ours.to_arrow_table().to_pandas()
    files = sorted(str(path) for path in folder.rglob("*.parquet")) if folder.exists() else []
    if not files:
        return TableComparison(f"{schema}.{table}", len(ours), 0, [f"no Parquet files under {folder}"])
    listed = ", ".join("'" + name.replace("'", "''") + "'" for name in files)
    theirs = con.sql(f"select * from read_parquet([{listed}], hive_partitioning = true)").to_arrow_table().to_pandas()
    left_out = (*RUN_TIME_COLUMNS, *SPARK_ONLY_COLUMNS)
    theirs = theirs.drop(columns=[column for column in left_out if column in theirs.columns])
    result = TableComparison(f"{schema}.{table}", len(ours), len(theirs))
    missing = [column for column in ours.columns if column not in theirs.columns]
    extra = [column for column in theirs.columns if column not in ours.columns]
    if missing or extra:
        result.differences.append(f"columns only on DuckDB: {missing}; only on Spark: {extra}")
        return result
    if len(ours) != len(theirs):
        result.differences.append(f"{len(ours)} rows on DuckDB, {len(theirs)} on Spark")
        return result
    ours, theirs = _sorted(ours), _sorted(theirs[list(ours.columns)])
    for column in ours.columns:
        difference = _column_difference(column, ours[column], theirs[column])
        if difference:
            result.differences.append(difference)
    return result


def compare_warehouses(con: duckdb.DuckDBPyConnection, data_dir: Path) -> list[TableComparison]:
    """Every table dbt built on DuckDB (the schemas in COMPARED_SCHEMAS; views are skipped) against Spark's."""
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' "
        f"and table_schema in ({', '.join(repr(schema) for schema in COMPARED_SCHEMAS)}) order by all"
    ).fetchall()
    return [compare_table(con, data_dir, schema, table) for schema, table in tables]


def _run_time(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    """The run-time columns the table has, as a list for `exclude` ('' when it has none)."""
    present = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    return ", ".join(f'"{name}"' for name in RUN_TIME_COLUMNS if name in present)


def _normalised(series: pd.Series) -> pd.Series:
    """Values as both engines' types can agree on: instants in UTC, decimals and integers as floats, text as str."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series.astype("datetime64[us]")
    if series.dtype == object:
        sample = series.dropna()
        if len(sample) and all(hasattr(value, "as_tuple") for value in sample.head(20)):  # decimal.Decimal
            return series.map(lambda value: None if value is None else float(value)).astype("float64")
        if len(sample) and isinstance(sample.iloc[0], bytes | bytearray):
            return series
        return series.map(lambda value: None if value is None else str(value))
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("boolean")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    return series.astype("string")


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.apply(_normalised)
    keys = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values.dtype):
            values = values.map(_sort_value)
        keys[column] = values
    order = keys.sort_values(list(keys.columns), na_position="first", kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def _sort_value(value: object) -> float:
    """A double rounded to SORT_DIGITS significant digits, so that last-bit differences do not reorder rows."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    return float(f"{float(value):.{SORT_DIGITS}g}")


def _column_difference(column: str, ours: pd.Series, theirs: pd.Series) -> str | None:
    if pd.api.types.is_float_dtype(ours.dtype) and pd.api.types.is_float_dtype(theirs.dtype):
        a, b = ours.to_numpy(dtype=float, na_value=np.nan), theirs.to_numpy(dtype=float, na_value=np.nan)
        same = np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
    else:
        same = (ours.isna() & theirs.isna()) | (ours.astype(object) == theirs.astype(object)).fillna(False)
        same = same.to_numpy(dtype=bool)
    if same.all():
        return None
    first = int(np.flatnonzero(~same)[0])
    example = f"row {first}: DuckDB {ours.iloc[first]!r}, Spark {theirs.iloc[first]!r}"
    return f"{column}: {int((~same).sum())} rows differ, e.g. {example}"
