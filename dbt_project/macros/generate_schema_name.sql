{#- Models land in the schema named in their folder config (staging, intermediate, marts) rather than
    dbt's default "<target schema>_<custom schema>", because analysts query marts.* by name. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
