-- One row per user and planned experiment (seed experiments): the variant the user was first exposed to. What the
-- live profile API shows as the user's experiment variants. Experiments a client names outside the seed are left
-- out, so what one client sends cannot grow a profile.
with exposures as (

    select experiment_id, user_id, variant, exposed_at from {{ ref('int_experiment_exposures') }}

),

planned as (

    select experiment_id from {{ ref('experiments') }}

)

select exposures.user_id, exposures.experiment_id, exposures.variant, exposures.exposed_at
from exposures
inner join planned on exposures.experiment_id = planned.experiment_id
where exposures.variant <> '(invalid)'
