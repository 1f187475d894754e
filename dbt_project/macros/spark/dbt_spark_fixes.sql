{#- Two faults of dbt-spark 1.11.0, mended here (project macros take precedence over the adapter's); each has a test
    in tests/test_spark_equality.py (test_dbt_sparks_two_faults_are_mended). -#}

{#- dbt.dateadd on Spark: dbt-spark's goes through to_unix_timestamp, which drops the sub-seconds, and writes the
    interval into `interval * multiplier` unbracketed (`period_number + 1 * 7`). timestampadd keeps microseconds and
    takes the interval as one value; months clamp to the month's last day as DuckDB's date + interval does. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) %}
    {%- set units = {
        'microsecond': ('microsecond', 1), 'millisecond': ('millisecond', 1), 'second': ('second', 1),
        'minute': ('minute', 1), 'hour': ('hour', 1), 'day': ('day', 1), 'week': ('day', 7),
        'month': ('month', 1), 'quarter': ('month', 3), 'year': ('month', 12),
    } -%}
    {%- if datepart not in units -%}
        {{ exceptions.raise_compiler_error("dateadd: datepart '" ~ datepart ~ "' is not supported on Spark") }}
    {%- endif -%}
    {%- set unit, multiplier = units[datepart] -%}
    timestampadd({{ unit }}, cast(({{ interval }}) * {{ multiplier }} as bigint), cast({{ from_date_or_timestamp }} as timestamp))
{% endmacro %}

{#- Seeds on Spark: dbt-spark binds each CSV value as a parameter, and its session cursor formats them into the SQL
    text with Python's % operator, so that an empty cell (None) arrives as the string 'None'. Values are written as
    SQL literals here: null for an empty cell, the text quoted (backslash and quote escaped) otherwise. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set statements = [] -%}
  {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
    {%- set sql -%}
      insert into {{ this.render() }} values
      {% for row in chunk -%}
        ({%- for col_name in agate_table.column_names -%}
          {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
          {%- set value = row[loop.index0] -%}
          cast({{ 'null' if value is none else "'" ~ (value | string | replace('\\', '\\\\') | replace("'", "\\'")) ~ "'" }} as {{ type }})
          {%- if not loop.last %}, {% endif -%}
        {%- endfor -%}){%- if not loop.last %},{% endif %}
      {% endfor %}
    {%- endset -%}
    {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
    {%- do statements.append(sql) -%}
  {%- endfor -%}
  {{ return(statements[0] if statements else '') }}
{% endmacro %}
