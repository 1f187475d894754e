"""The live path: per-user state kept up to date from the collector's spool within a second, beside the batch path.

`live.consumer` tails the spool files the collector fsyncs (and follows them into the landing folder when they
rotate), folds each event into its user's state in Redis with the file offsets it moves in the same transaction
(a restart resumes exactly; a replay rebuilds the same state), and `live.profiles` reads a user's live profile.
Plain Python: no dagster import, so it runs and is tested alone. docs/live.md is the user's guide.
"""
