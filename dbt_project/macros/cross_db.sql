{#- Small adapter-dispatched helpers for what dbt's own cross-database macros do not cover.
    Each has a DuckDB form and a default form that Spark SQL understands. -#}

{% macro regexp_replace_all(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'engagement_warehouse')(expression, pattern, replacement)) }}
{%- endmacro %}
{% macro duckdb__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}
{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{#- A top-level field of a JSON object column, as text. -#}
{% macro json_text(column, field) -%}
    {{ return(adapter.dispatch('json_text', 'engagement_warehouse')(column, field)) }}
{%- endmacro %}
{% macro duckdb__json_text(column, field) -%}
    json_extract_string({{ column }}, '$.{{ field }}')
{%- endmacro %}
{% macro default__json_text(column, field) -%}
    get_json_object({{ column }}, '$.{{ field }}')
{%- endmacro %}

{#- Per group, `value` of the row that comes first in the order of `order_columns` (a list of column names), as an
    aggregate. The columns must order the group's rows without ties. -#}
{% macro first_by(value, order_columns) -%}
    {{ return(adapter.dispatch('first_by', 'engagement_warehouse')(value, order_columns)) }}
{%- endmacro %}
{% macro duckdb__first_by(value, order_columns) -%}
    arg_min_null({{ value }}, ({{ order_columns | join(', ') }}))
{%- endmacro %}
{% macro default__first_by(value, order_columns) -%}
    min_by({{ value }}, struct({{ order_columns | join(', ') }}))
{%- endmacro %}

{#- Per group, its first row in the order of `fields` (a list of (name, expression) pairs; the leading ones must order
    the group's rows without ties), as an aggregate giving a struct whose fields are read as <alias>.<name>. One
    aggregate instead of a first_by per value: at 2M rows a third of the time. -#}
{% macro first_row(fields) -%}
    {{ return(adapter.dispatch('first_row', 'engagement_warehouse')(fields)) }}
{%- endmacro %}
{% macro duckdb__first_row(fields) -%}
    min(struct_pack({% for name, expression in fields %}{{ name }} := {{ expression }}{{ ", " if not loop.last }}{% endfor %}))
{%- endmacro %}
{% macro default__first_row(fields) -%}
    min(named_struct({% for name, expression in fields %}'{{ name }}', {{ expression }}{{ ", " if not loop.last }}{% endfor %}))
{%- endmacro %}

{#- A UTC timestamp as wall-clock time in the reporting time zone (var reporting_timezone). -#}
{% macro to_reporting_time(column) -%}
    {{ return(adapter.dispatch('to_reporting_time', 'engagement_warehouse')(column)) }}
{%- endmacro %}
{% macro duckdb__to_reporting_time(column) -%}
    timezone('{{ var("reporting_timezone") }}', {{ column }} at time zone 'UTC')
{%- endmacro %}
{% macro default__to_reporting_time(column) -%}
    from_utc_timestamp({{ column }}, '{{ var("reporting_timezone") }}')
{%- endmacro %}

{#- Integers 0..upper_bound - 1 as column `n`, from cross-joined digits (no generate_series needed). -#}
{% macro integer_series(upper_bound) -%}
    {%- set digits = (upper_bound - 1) | string | length -%}
    select n from (
        select
            {% for i in range(digits) %}d{{ i }}.digit * {{ 10 ** i }}{{ " + " if not loop.last }}{% endfor %} as n
        from
            {% for i in range(digits) -%}
            (select 0 as digit union all select 1 union all select 2 union all select 3 union all select 4
             union all select 5 union all select 6 union all select 7 union all select 8 union all select 9) as d{{ i }}
            {{- "," if not loop.last }}
            {% endfor %}
    ) as digits
    where n < {{ upper_bound }}
{%- endmacro %}

{#- A top-level field of a JSON object column as a bounded label (a trait, a variant, a feature name): null when
    absent or JSON null; the flag value '(invalid)' when it is an object or an array, or longer than `max_length`
    characters (default var label_max_length). Client values then never carry 100 KB strings or JSON documents
    into a mart's keys; marts.data_health_flags counts the '(invalid)' ones. -#}
{% macro json_label(column, field, max_length=none) -%}
    {{ return(adapter.dispatch('json_label', 'engagement_warehouse')(column, field, max_length or var('label_max_length'))) }}
{%- endmacro %}
{% macro duckdb__json_label(column, field, max_length) -%}
    case
        when json_type({{ column }}, '$.{{ field }}') in ('OBJECT', 'ARRAY') then '(invalid)'
        when length(json_extract_string({{ column }}, '$.{{ field }}')) > {{ max_length }} then '(invalid)'
        else json_extract_string({{ column }}, '$.{{ field }}')
    end
{%- endmacro %}
{% macro default__json_label(column, field, max_length) -%}
    case
        when substring(trim(get_json_object({{ column }}, '$.{{ field }}')), 1, 1) in ('{', '[') then '(invalid)'
        when length(get_json_object({{ column }}, '$.{{ field }}')) > {{ max_length }} then '(invalid)'
        else get_json_object({{ column }}, '$.{{ field }}')
    end
{%- endmacro %}

{#- A number read from client text: null (never an error) when the text is not a number that fits the type. -#}
{% macro safe_number(expression, type) -%}
    try_cast({{ expression }} as {{ type }})
{%- endmacro %}

{#- ISO weekday of a date or timestamp: 1 = Monday ... 7 = Sunday (DuckDB's dow counts from Sunday = 0, Spark's
    dayofweek from Sunday = 1). -#}
{% macro iso_weekday(column) -%}
    {{ return(adapter.dispatch('iso_weekday', 'engagement_warehouse')(column)) }}
{%- endmacro %}
{% macro duckdb__iso_weekday(column) -%}
    isodow({{ column }})
{%- endmacro %}
{% macro default__iso_weekday(column) -%}
    ((dayofweek({{ column }}) + 5) % 7 + 1)
{%- endmacro %}

{#- The mean of a double column, the same on every rebuild: summed as a decimal (exact, whatever order the threads
    add the rows in; a double sum differs in its last bits from run to run), returned as a double. -#}
{% macro stable_avg(column) -%}
    cast(avg(cast({{ column }} as decimal(38, 12))) as double)
{%- endmacro %}

{#- Placed between a CTE's name and its body (`name as {{ inline_cte() }} (...)`): DuckDB computes a CTE that is
    read more than once into a buffer first, which for a CTE of every event with its JSON spills tens of GB at
    100M events; inlined, each reader computes only the columns it reads. Engines without the hint inline anyway. -#}
{% macro inline_cte() -%}
    {{ return(adapter.dispatch('inline_cte', 'engagement_warehouse')()) }}
{%- endmacro %}

{% macro duckdb__inline_cte() -%}
    not materialized
{%- endmacro %}

{% macro default__inline_cte() -%}
{%- endmacro %}

{#- A CTE computed once for all its readers (DuckDB: `materialized`). Spark inlines a CTE into every reader whatever
    is said: what many readers share there must be a table. -#}
{% macro materialized_cte() -%}
    {{ return(adapter.dispatch('materialized_cte', 'engagement_warehouse')()) }}
{%- endmacro %}

{% macro duckdb__materialized_cte() -%}
    materialized
{%- endmacro %}

{% macro default__materialized_cte() -%}
{%- endmacro %}

{#- Seconds from one timestamp to another, with their microseconds (dbt.datediff counts second boundaries
    crossed: 0.2 s across a boundary is 1 there). -#}
{% macro seconds_between(start, end) -%}
    {{ return(adapter.dispatch('seconds_between', 'engagement_warehouse')(start, end)) }}
{%- endmacro %}
{% macro duckdb__seconds_between(start, end) -%}
    cast(epoch_us({{ end }}) - epoch_us({{ start }}) as double) / 1000000
{%- endmacro %}
{% macro default__seconds_between(start, end) -%}
    cast(unix_micros({{ end }}) - unix_micros({{ start }}) as double) / 1000000
{%- endmacro %}

