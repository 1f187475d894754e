-- Cart abandonment: a cart is the run of product_added events between two orders. It is abandoned when no
-- order_completed follows within var cart_abandonment_hours (24) of its first add: the user enters at that
-- moment (once per cart) and leaves with the next order.
with as_of_point as (

    select as_of from {{ ref('int_as_of') }}

),

cart_events as (

    select
        user_id,
        event_at,
        case when event_name = 'order_completed' then 1 else 0 end as is_order,
        -- orders first at the same instant: an add in the same second as an order belongs to the next cart
        sum(case when event_name = 'order_completed' then 1 else 0 end) over (
            partition by user_id order by event_at, event_name desc, message_id
            rows between unbounded preceding and current row
        ) as orders_so_far
    from {{ ref('int_activity_events') }}
    where event_name in ('product_added', 'order_completed')

),

carts as (

    select user_id, orders_so_far as cart_number, min(event_at) as first_added_at, count(*) as items_added
    from cart_events
    where is_order = 0
    group by user_id, orders_so_far

),

closing_orders as (

    -- the order that makes orders_so_far = n closes cart n - 1
    select user_id, orders_so_far - 1 as cart_number, event_at as ordered_at
    from cart_events
    where is_order = 1

),

abandoned as (

    select
        carts.user_id,
        carts.cart_number,
        carts.first_added_at,
        carts.items_added,
        {{ dbt.dateadd('hour', var('cart_abandonment_hours'), 'carts.first_added_at') }} as entered_at,
        closing_orders.ordered_at
    from carts
    left join closing_orders
        on carts.user_id = closing_orders.user_id and carts.cart_number = closing_orders.cart_number

)

select
    'cart_abandonment' as audience,
    abandoned.user_id,
    abandoned.entered_at,
    abandoned.ordered_at as exited_at,
    abandoned.first_added_at,
    abandoned.items_added
from abandoned
cross join as_of_point
where abandoned.entered_at <= as_of_point.as_of
  and (abandoned.ordered_at is null or abandoned.ordered_at > abandoned.entered_at)
