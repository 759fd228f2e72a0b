-- relabel_labels: the labels of record `labeltrail relabel --source clickhouse` recomputes:
-- each (schema version, comment)'s latest live label (v_current_labels' order: recorded time,
-- event time, event id) among the rows read from the labels topic before the positions the
-- projection covers (the projector's consumer_positions, passed in: a batch written but not
-- yet recorded is left out), one row per item in (schema version, comment id) order, every
-- field of the label and where it was read, and a 64-bit hash of each vote id it names (the
-- join to the votes, relabel_votes). The latest event of each item is chosen by its
-- id alone (argMax of a Map or of arrays costs several times the whole scan) and its row
-- read by a scan filtered on those ids; no FINAL: of an event read twice (a batch projected
-- again, a copy further on the log) the earliest copy is kept, as the log reader keeps it.
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64)
SELECT
    schema_version, comment_id, label, route, method, distribution, event_id, label_id, classes,
    confidence, method_params, vote_ids, arrayMap(v -> cityHash64(v), vote_ids) AS vote_hashes,
    annotator_ids, adjudication_id, machine_made,
    gold_label, toUnixTimestamp64Milli(occurred_at) AS occurred_ms,
    toUnixTimestamp64Milli(recorded_at) AS recorded_ms, partition, offset
FROM labels
WHERE topic = {topic:String} AND run_id = ''
  AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)}, toUInt64(0))
  AND event_id IN
  (
      SELECT argMax(event_id, (recorded_at, occurred_at, event_id))
      FROM labels
      WHERE topic = {topic:String} AND run_id = ''
        AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)},
                               toUInt64(0))
      GROUP BY schema_version, comment_id
  )
ORDER BY schema_version, comment_id, partition, offset
LIMIT 1 BY schema_version, comment_id
