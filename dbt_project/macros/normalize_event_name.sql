{#- "Order Completed", "orderCompleted", "order-completed " -> order_completed -#}
{% macro normalize_event_name(expression) -%}
    nullif(
        {{ regexp_replace_all(
            "lower(" ~ regexp_replace_all(
                regexp_replace_all("trim(" ~ expression ~ ")", "([a-z0-9])([A-Z])", "\\1_\\2"),
                "[^A-Za-z0-9]+", "_") ~ ")",
            "^_+|_+$", "") }},
        ''
    )
{%- endmacro %}
