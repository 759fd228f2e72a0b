"""Every stage's pure fold: ``fold.apply(event, position) -> [Event | Rejected]``, state in the
fold object, no Kafka, faust or ClickHouse import, so the same fold runs live (a Kafka runner
or a faust agent feeds it) and in a replay of the log, and a rebuild gives the outputs the
live run gave. ``labeltrail.stages`` builds each stage's fold from the settings.
"""
