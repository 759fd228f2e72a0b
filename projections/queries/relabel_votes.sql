-- relabel_votes: every vote read from the votes topic before the positions the projection
-- covers, in log order (partition, offset), by two 64-bit hashes of its id: `labeltrail
-- relabel --source clickhouse` joins the vote ids its labels of record name (relabel_labels'
-- vote_hashes) to these by cityHash64 in numpy, takes each id's first copy in this order (as
-- the log reader does), and checks the pair by sipHash64 (vote_checks), so a collision of the
-- first hash is an error, never a wrong vote. The ids themselves are not read (about a third
-- of the scan); the annotator and the label come as Arrow dictionaries (LowCardinality), so
-- numpy gets codes without encoding 2.4 million strings. No FINAL: a batch projected twice
-- gives the same vote twice, the first wins.
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64)
SELECT
    cityHash64(vote_id) AS hash, sipHash64(vote_id) AS check,
    toLowCardinality(annotator_id) AS annotator_id, toLowCardinality(label) AS label
FROM votes
WHERE topic = {topic:String}
  AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)}, toUInt64(0))
ORDER BY partition, offset
SETTINGS output_format_arrow_low_cardinality_as_dictionary = 1
