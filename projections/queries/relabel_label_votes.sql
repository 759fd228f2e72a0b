-- relabel_label_votes: the labels of record `labeltrail relabel --source clickhouse` recomputes,
-- read from label_votes (one narrow table: the votes each label names already resolved, so no
-- vote scan and no join): each (schema version, comment)'s latest live label (v_current_labels'
-- order: recorded time, event time, event id; then its earliest copy, and of a row filled
-- twice the latest fill) among the rows read from the labels topic before the positions the
-- projection covers, in (schema version, comment id) order, with the annotators and labels of
-- its votes (Arrow dictionaries), and `complete`: every id it names was found. A run uses it
-- only when label_votes_coverage finds every live label row in it and no vote past the votes
-- topic's covered positions (so every vote found was read before them), and every chosen row
-- is complete (clickhouse.relabel.read_projected checks).
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64)
SELECT
    CAST(schema_version AS String) AS schema_version, comment_id, label,
    CAST(route AS String) AS route, CAST(method AS String) AS method, distribution, vote_annotators,
    vote_labels, partition, offset, resolved = named AS complete
FROM label_votes
WHERE topic = {topic:String}
  AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)}, toUInt64(0))
ORDER BY schema_version, comment_id, recorded_at DESC, occurred_at DESC, event_id DESC,
         partition, offset, filled DESC
LIMIT 1 BY schema_version, comment_id
SETTINGS output_format_arrow_low_cardinality_as_dictionary = 1
