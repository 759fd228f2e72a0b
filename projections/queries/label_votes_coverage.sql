-- label_votes_coverage: whether label_votes holds every live label row read from the labels
-- topic before the positions the projection covers (the distinct positions on both sides), so
-- `labeltrail relabel --source clickhouse` may read it instead of labels and votes.
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64)
SELECT
    (SELECT uniqExact(partition, offset) FROM labels
     WHERE topic = {topic:String} AND run_id = ''
       AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)},
                              toUInt64(0)))
    = (SELECT uniqExact(partition, offset) FROM label_votes
       WHERE topic = {topic:String}
         AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)},
                                toUInt64(0))) AS covered
