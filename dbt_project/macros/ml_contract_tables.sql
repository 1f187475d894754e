{#- The ml.* tables are written by Python assets; create them empty (with their contract columns) when missing so
    that models reading them build on a warehouse where no model has been trained yet. On Spark they are external
    Parquet tables in $DATA_DIR/spark/ml/<table>, where the ML assets write their files. One statement per call:
    Spark parses one at a time. -#}
{% macro create_ml_contract_tables() %}
  {% if execute %}
    {% set tables = {
        'user_clusters': 'user_id string, cluster_id integer, cluster_name string, confidence double, events bigint,
                          is_low_data boolean, model_version string',
        'churn_scores': 'user_id string, churn_probability double, risk_tier string, as_of timestamp,
                         model_version string',
        'model_metrics': 'model_name string, model_version string, is_champion boolean, trained_at timestamp,
                          as_of timestamp, metric string, value double, run_id string',
    } %}
    {% do run_query('create schema if not exists ml') %}
    {% for table, columns in tables.items() %}
      {% do run_query('create table if not exists ml.' ~ table ~ ' (' ~ columns ~ ')' ~ external_table_options('ml', table)) %}
    {% endfor %}
  {% endif %}
{% endmacro %}

{#- What follows a table's columns when it is an external table of files others write: nothing on DuckDB (the
    Python steps write into the warehouse file itself), Parquet in $DATA_DIR/spark/<schema>/<table> on Spark. -#}
{% macro external_table_options(schema, table) -%}
    {{ return(adapter.dispatch('external_table_options', 'engagement_warehouse')(schema, table)) }}
{%- endmacro %}
{% macro default__external_table_options(schema, table) -%}
{%- endmacro %}
{% macro spark__external_table_options(schema, table) -%}
    {{ " using parquet location '" ~ spark_files_dir() ~ "/" ~ schema ~ "/" ~ table ~ "'" }}
{%- endmacro %}

{#- The absolute folder of the Spark target's files ($DATA_DIR/spark): the var data_dir, else DATA_DIR. -#}
{% macro spark_files_dir() -%}
    {%- set data_dir = var('data_dir', env_var('DATA_DIR', '')) -%}
    {%- if not data_dir.startswith('/') -%}
        {{ exceptions.raise_compiler_error("the spark target needs DATA_DIR (or the var data_dir) as an absolute path, got '" ~ data_dir ~ "'") }}
    {%- endif -%}
    {{ return(data_dir.rstrip('/') ~ '/spark') }}
{%- endmacro %}

{#- raw.* on Spark: external Parquet tables over the files spark_warehouse.raw_export writes (their schema read from
    the files). Nothing to do on DuckDB, where ingestion writes the tables themselves. -#}
{% macro register_raw_tables() %}
  {% if execute %}
    {{ return(adapter.dispatch('register_raw_tables', 'engagement_warehouse')()) }}
  {% endif %}
{% endmacro %}
{% macro default__register_raw_tables() %}
{% endmacro %}
{% macro spark__register_raw_tables() %}
    {% do run_query('create schema if not exists raw') %}
    {% for table in ['events', 'events_rejected', 'load_manifest', 'batches'] %}
      {% do run_query('create table if not exists raw.' ~ table ~ external_table_options('raw', table)) %}
      {% do run_query('refresh table raw.' ~ table) %}
    {% endfor %}
{% endmacro %}
