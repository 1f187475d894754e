{#-
    The complete cells of a retention matrix, the additive parts of an average retention curve: the average over
    any set of cohorts is sum(retained_users) / sum(users_completed) over their rows for each period (weighted over
    complete cells only; an incomplete cell is left out, never counted as zero). `dimension_columns` are the
    matrix's split columns (e.g. dimension, dimension_value), or constants naming the whole population.
-#}
{% macro retention_curve_cells(matrix, dimension_columns) %}
    select
        {{ dimension_columns }},
        grain,
        cohort_start,
        period_number,
        cohort_size as users_completed,
        retained_users,
        retained_users_unbounded
    from {{ matrix }}
    where is_complete
{% endmacro %}
