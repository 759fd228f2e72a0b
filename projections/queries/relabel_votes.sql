-- relabel_votes: the votes the labels of record (relabel_labels, same parameters; its text
-- replaces the line `relabel_labels` below) name, one
-- row per vote in (schema version, item, place in the label's vote_ids) order: the item's
-- index among its version's labels of record (relabel_labels' order), the annotator and the
-- label. Each vote id is read as its first copy on the log before the covered positions
-- (earliest partition and offset, as the log reader takes the first); a vote id the log does
-- not hold is left out, as the log reader leaves it out.
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64),
--             votes_topic String, vote_partitions Array(UInt32), vote_ends Array(UInt64)
WITH record AS
(
    -- relabel_labels' rows, its text put here by clickhouse.relabel (one query, not two copies)
    relabel_labels
)
SELECT named.schema_version AS schema_version, named.item AS item,
       toLowCardinality(cast.annotator_id) AS annotator_id, toLowCardinality(cast.label) AS label
FROM
(
    SELECT schema_version, item, id, n
    FROM
    (
        SELECT schema_version, vote_ids AS ids,
               row_number() OVER (PARTITION BY schema_version ORDER BY comment_id) - 1 AS item
        FROM record
    )
    ARRAY JOIN ids AS id, arrayEnumerate(ids) AS n
) AS named
INNER JOIN
(
    SELECT vote_id, argMin(annotator_id, (partition, offset)) AS annotator_id,
           argMin(label, (partition, offset)) AS label
    FROM votes
    WHERE topic = {votes_topic:String}
      AND offset < transform(partition, {vote_partitions:Array(UInt32)}, {vote_ends:Array(UInt64)}, toUInt64(0))
    GROUP BY vote_id
) AS cast ON named.id = cast.vote_id
ORDER BY schema_version, item, n
