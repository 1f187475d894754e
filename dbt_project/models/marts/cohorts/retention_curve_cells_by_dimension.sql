-- The complete cells of marts.cohort_retention_by_dimension: the parts of the average retention curve of any
-- range of cohorts and any set of values of one dimension.
{{ retention_curve_cells(ref('cohort_retention_by_dimension'), 'dimension, dimension_value') }}
