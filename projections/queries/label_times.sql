-- label_times: what labeltrail audit label-as-of needs to refuse an unknown id and to explain
-- an empty answer: whether any event names the comment, whether the schema version is known
-- (published, or on a label), how many labels match, and the first of them by recorded time
-- and by event time.
-- Parameters: comment_id String ('' for every comment), schema_version String ('' for every
--             version)
SELECT
    {comment_id:String} = ''
        OR (SELECT count() FROM events WHERE comment_id = {comment_id:String}) > 0
        AS comment_known,
    {schema_version:String} = ''
        OR (SELECT count() FROM label_schemas WHERE version = {schema_version:String}) > 0
        OR (SELECT count() FROM labels WHERE schema_version = {schema_version:String}) > 0
        AS schema_version_known,
    count() AS labels,
    minOrNull(recorded_at) AS first_recorded_at,
    minOrNull(occurred_at) AS first_occurred_at
FROM labels FINAL
WHERE ({comment_id:String} = '' OR comment_id = {comment_id:String})
  AND ({schema_version:String} = '' OR schema_version = {schema_version:String})
