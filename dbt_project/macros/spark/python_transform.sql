{#- Spark: stream a relation's rows, grouped by `group_column`, through `python -m <module> <arguments>` with
    Spark's script transform, for statistics that run as Python (dbt-spark runs Python models only on Databricks).
    The rows cross as JSON lines (ml/script_transform.py), so that no client value (a name with a tab or a newline)
    can break a row; `result_schema` is the DDL of the rows the module writes. The Python is the var pyspark_python,
    else the env var PYSPARK_PYTHON (Spark's own setting for its Python workers); every machine of a cluster needs
    the project there. -#}
{% macro python_transform(relation, group_column, module, arguments, result_schema) %}
{%- set command = var('pyspark_python', env_var('PYSPARK_PYTHON', 'python3')) ~ ' -m ' ~ module ~ ' '
    ~ arguments | join(' ') -%}
with input_rows as (

    -- one group's rows reach one script, together
    select {{ group_column }}, to_json(struct(*)) as input_json
    from {{ relation }}
    distribute by {{ group_column }}

),

result_rows as (

    select transform(input_json) using '{{ command | replace("'", "\\'") }}' as (result_json string)
    from input_rows

),

results as (

    select from_json(result_json, '{{ result_schema | replace("\n", " ") }}') as result
    from result_rows

)

select result.* from results
{% endmacro %}
