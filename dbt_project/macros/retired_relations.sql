{#- Relations an earlier version built and this one does not, dropped at the start of every run so that an upgraded
    warehouse holds no stale copy beside the model that replaced it. One line per relation, with what replaced it. -#}
{% macro drop_retired_relations() %}
  {% if execute %}
    {#- marts.ml_feature_events (a view) became the incremental table intermediate.int_feature_events -#}
    {% do run_query('drop view if exists marts.ml_feature_events') %}
  {% endif %}
{% endmacro %}
