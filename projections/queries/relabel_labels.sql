-- relabel_labels: the labels of record `labeltrail relabel --source clickhouse` recomputes:
-- each (schema version, comment)'s latest live label (v_current_labels' order: recorded time,
-- event time, event id) among the rows read from the labels topic before the positions the
-- projection covers (the projector's consumer_positions, passed in: a batch written but not
-- yet recorded is left out), one row per item in (schema version, comment id) order, with
-- what a run computes and reports from: the label, route, method and distribution, two 64-bit
-- hashes of each vote id it names (the join to the votes, relabel_votes: cityHash64 finds the
-- vote, sipHash64 checks it) and where it was read (its other fields are fetched by position
-- only for the items shown or committed, relabel_label_rows).
-- Most items have a single row: only those with several (a label superseded, an event read
-- twice) are grouped to choose one, by its position (argMax of the order, then the earliest
-- copy: the log reader keeps an event's first copy); no FINAL. Grouping every item by event id
-- cost about 1.7 CPU-s at article scale, the whole read with it 2.1-2.6; this 1.2-1.5.
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64)
WITH
    several AS
    (
        SELECT comment_id, schema_version
        FROM labels
        WHERE topic = {topic:String} AND run_id = ''
          AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)},
                                 toUInt64(0))
        GROUP BY comment_id, schema_version
        HAVING count() > 1
    ),
    chosen AS
    (
        SELECT argMax((partition, offset),
                      (recorded_at, occurred_at, event_id, -toInt64(partition), -toInt64(offset)))
        FROM labels
        WHERE topic = {topic:String} AND run_id = ''
          AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)},
                                 toUInt64(0))
          AND (comment_id, schema_version) IN several
        GROUP BY comment_id, schema_version
    )
SELECT
    schema_version, comment_id, label, route, method, distribution,
    arrayMap(v -> cityHash64(v), vote_ids) AS vote_hashes,
    arrayMap(v -> sipHash64(v), vote_ids) AS vote_checks, partition, offset
FROM labels
WHERE topic = {topic:String} AND run_id = ''
  AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)}, toUInt64(0))
  AND ((comment_id, schema_version) NOT IN several OR (partition, offset) IN chosen)
ORDER BY schema_version, comment_id
LIMIT 1 BY schema_version, comment_id
