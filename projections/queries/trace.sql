-- trace: every event about one comment, in event time, read from ClickHouse alone.
-- Parameters: comment_id String
SELECT
    occurred_at,
    event_type,
    producer,
    annotator_id,
    schema_version,
    event_id,
    causation_id,
    payload
FROM events FINAL
WHERE comment_id = {comment_id:String}
ORDER BY occurred_at, recorded_at, event_type
