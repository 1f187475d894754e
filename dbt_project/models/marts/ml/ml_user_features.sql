-- Behavioural features of every user at as_of: what the clustering model reads, and the churn model scores.
with features as (

    {{ ml_user_features("(select as_of as cutoff_at from " ~ ref('int_as_of') ~ ") as as_of_point") }}

)

select
    features.*,
    -- churn is scored for users active in the churn window before as_of; those lapsed longer are already churned
    features.recency_days < {{ var('churn_window_days') }} as is_churn_scoring_population
from features
