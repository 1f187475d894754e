{#- The incremental materialization on Spark with plain Parquet tables (no Delta or Iceberg, so no MERGE and no
    DELETE), in place of dbt-spark's, which offers neither `delete+insert` nor a way for a model to read its own
    table while overwriting it. The models keep one meaning on both engines:

    - no unique_key: the new rows are appended;
    - a unique_key (`delete+insert`, the models' strategy on DuckDB): the rows of the table whose key is among the
      new rows' are replaced by the new rows; with config `replaces_users_in_scope` (the per-user models,
      macros/incremental_users.sql) so are all rows of the users the run recomputes, which covers the users a
      DuckDB post-hook deletes (re-stitched away: no rows left to write).

    Every step is one statement (Spark's session cursor parses one). The new rows are written to a table first,
    because the model's query may read the model's own table (its watermark, its open entries), which Spark
    refuses to overwrite while reading; the rows kept are copied out beside them, then the table is overwritten
    from both. A run thus rewrites the table (on one machine at 10M events, seconds; partitioning by day or user
    bucket, so that only touched partitions are rewritten, is the next step: docs/spark.md). -#}
{% materialization incremental, adapter='spark', supported_languages=['sql'] -%}
  {%- set unique_key = config.get('unique_key', none) -%}
  {%- set target_relation = this -%}
  {%- set existing_relation = load_relation(this) -%}
  {%- set new_rows = make_spark_work_relation(this, '__dbt_new') -%}
  {%- set kept_rows = make_spark_work_relation(this, '__dbt_kept') -%}

  {{ run_hooks(pre_hooks) }}

  {%- if existing_relation is none or existing_relation.is_view or should_full_refresh() -%}
    {%- if existing_relation is not none -%}
      {% do adapter.drop_relation(existing_relation) %}
    {%- endif -%}
    {%- call statement('main') -%}
      {{ create_table_as(False, target_relation, sql) }}
    {%- endcall -%}
  {%- else -%}
    {% do drop_spark_work_relation(new_rows) %}
    {% do run_query('create table ' ~ new_rows ~ ' using parquet as ' ~ sql) %}
    {%- set columns = adapter.get_columns_in_relation(target_relation) | map(attribute='quoted') | join(', ') -%}
    {%- if unique_key is none -%}
      {%- call statement('main') -%}
        insert into table {{ target_relation }} select {{ columns }} from {{ new_rows }}
      {%- endcall -%}
    {%- else -%}
      {%- set keys = [unique_key] if unique_key is string else unique_key -%}
      {%- set replaces_users = config.get('replaces_users_in_scope', false) -%}
      {% do drop_spark_work_relation(kept_rows) %}
      {% set kept_query %}
        create table {{ kept_rows }} using parquet as
        select {{ columns }} from {{ target_relation }} as existing
        where not exists (
            select 1 from {{ new_rows }} as replacing
            where {% for key in keys %}replacing.{{ key }} <=> existing.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        )
        {%- if replaces_users %}
          and existing.user_id not in (select user_id from {{ users_in_scope() }} where user_id is not null)
        {%- endif %}
      {% endset %}
      {% do run_query(kept_query) %}
      {%- call statement('main') -%}
        insert overwrite table {{ target_relation }}
        select {{ columns }} from {{ kept_rows }}
        union all
        select {{ columns }} from {{ new_rows }}
      {%- endcall -%}
      {% do drop_spark_work_relation(kept_rows) %}
    {%- endif -%}
    {% do drop_spark_work_relation(new_rows) %}
  {%- endif -%}

  {% do persist_docs(target_relation, model) %}
  {{ run_hooks(post_hooks) }}
  {{ return({'relations': [target_relation]}) }}
{%- endmaterialization %}

{#- A table beside the model's that holds rows while a run replaces them; dropped when the run ends. -#}
{% macro make_spark_work_relation(relation, suffix) %}
  {{ return(relation.incorporate(path={'identifier': relation.identifier ~ suffix}, type='table')) }}
{% endmacro %}

{% macro drop_spark_work_relation(relation) %}
  {% do run_query('drop table if exists ' ~ relation) %}
{% endmacro %}
