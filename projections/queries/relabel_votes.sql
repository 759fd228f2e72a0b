-- relabel_votes: every vote read from the votes topic before the positions the projection
-- covers, in log order (partition, offset), with a 64-bit hash of its id: `labeltrail relabel
-- --source clickhouse` joins the vote ids its labels of record name (relabel_labels'
-- vote_hashes) to these by hash in numpy, takes each id's first copy in this order (as the log
-- reader does), and then compares the ids themselves, so a hash collision is an error, never
-- a wrong vote. No FINAL: a batch projected twice gives the same vote twice, the first wins.
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64)
SELECT cityHash64(vote_id) AS hash, vote_id, annotator_id, label
FROM votes
WHERE topic = {topic:String}
  AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)}, toUInt64(0))
ORDER BY partition, offset
