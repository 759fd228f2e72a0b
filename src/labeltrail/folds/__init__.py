"""Pure folds: ``apply(state, event) -> events out``. No Kafka, faust or ClickHouse here.

The same folds run live (a Kafka runner or faust agent feeds them) and in replay (batches
read from the log), so a rebuild gives the outputs the live run gave.
"""
