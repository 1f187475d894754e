{#- A user's value in the experiment sums (int_experiment_metric_moments): clamped to +- var
    experiment_max_user_revenue (null stays null) and held as decimal(18, 4), so that no client value (a flood of
    revenue, a wild prediction) can overflow a sum, and products (decimal(37, 8)) stay exact on Spark too, which
    rounds wider decimal products to 6 places. -#}
{% macro experiment_bounded_value(expression) -%}
    {%- set bound = var('experiment_max_user_revenue') -%}
    cast(case when {{ expression }} > {{ bound }} then {{ bound }}
              when {{ expression }} < -{{ bound }} then -{{ bound }}
              else {{ expression }} end as decimal(18, 4))
{%- endmacro %}
