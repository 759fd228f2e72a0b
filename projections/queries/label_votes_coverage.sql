-- label_votes_coverage: whether label_votes holds every live label row read from the labels
-- topic before the positions the projection covers (the distinct positions on both sides, each
-- as one 128-bit number: about 0.1 CPU-s at article scale against 0.4 as pairs), so `labeltrail
-- relabel --source clickhouse` may read it instead of labels and votes; and whether the votes
-- table holds a vote at or past the votes topic's covered positions (a batch written, its
-- positions not yet recorded): then the run reads labels and votes (checking each chosen
-- label's votes against the positions in relabel_label_votes cost about 0.3 CPU-s at article
-- scale, and a read through the projector's endpoint sees whole batches only anyway).
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64),
--             vote_topic String, vote_partitions Array(UInt32), vote_ends Array(UInt64)
SELECT
    (SELECT uniqExact(bitShiftLeft(toUInt128(partition), 64) + offset) FROM labels
     WHERE topic = {topic:String} AND run_id = ''
       AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)},
                              toUInt64(0)))
    = (SELECT uniqExact(bitShiftLeft(toUInt128(partition), 64) + offset) FROM label_votes
       WHERE topic = {topic:String}
         AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)},
                                toUInt64(0))) AS covered,
    (SELECT count() FROM votes
     WHERE topic = {vote_topic:String}
       AND offset >= transform(partition, {vote_partitions:Array(UInt32)},
                               {vote_ends:Array(UInt64)}, toUInt64(0))) > 0 AS votes_ahead
