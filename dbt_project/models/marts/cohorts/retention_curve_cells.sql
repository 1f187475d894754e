-- The complete cells of marts.cohort_retention (all users): the parts of the average retention curve of any
-- range of cohorts (marts.retention_curve is their sum over every cohort).
{{ retention_curve_cells(ref('cohort_retention'), "'all' as dimension, 'all cohorts' as dimension_value") }}
