-- relabel_label_rows: the fields of the labels of record that `labeltrail relabel --source
-- clickhouse` needs only for the items it shows or commits (relabel_labels reads the rest),
-- by their position on the labels topic: the given ones, or with all = true every live row
-- before the positions the projection covers (a commit: one scan, not a list of 800,000
-- positions). One row per position (a batch projected twice holds it twice).
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64), all Bool,
--             at_partitions Array(UInt32), at_offsets Array(UInt64)
SELECT
    event_id, label_id, classes, confidence, method_params, vote_ids, annotator_ids,
    adjudication_id, machine_made, gold_label,
    toUnixTimestamp64Milli(occurred_at) AS occurred_ms,
    toUnixTimestamp64Milli(recorded_at) AS recorded_ms, partition, offset
FROM labels
WHERE topic = {topic:String} AND run_id = ''
  AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)}, toUInt64(0))
  AND ({all:Bool} OR (partition, offset) IN
      (SELECT tupleElement(at, 1), tupleElement(at, 2)
       FROM (SELECT arrayJoin(arrayZip({at_partitions:Array(UInt32)},
                                       {at_offsets:Array(UInt64)})) AS at)))
ORDER BY partition, offset
LIMIT 1 BY partition, offset
