-- label_votes_fill: (re)resolve the live label rows of the given comments (all = true: every
-- one) into label_votes: each vote id a label names joined to the vote's first copy in log
-- order (on the labels topic's votes topic), in the label's order (ids not found are left out and counted apart: named vs
-- resolved). Run by clickhouse.relabel.fill_label_votes after a batch is written.
-- Parameters: all Bool, comments Array(String)
INSERT INTO label_votes
WITH
    l AS
    (
        SELECT topic, partition, offset, schema_version, comment_id, recorded_at, occurred_at,
               event_id, label, route, method, distribution, vote_ids
        FROM labels
        WHERE run_id = '' AND ({all:Bool} OR comment_id IN {comments:Array(String)})
    ),
    named AS
    (
        SELECT topic, partition, offset, replaceRegexpOne(topic, 'labels$', 'votes') AS vote_topic,
               vote_id, n
        FROM l ARRAY JOIN vote_ids AS vote_id, arrayEnumerate(vote_ids) AS n
    ),
    v AS
    (
        SELECT topic, vote_id,
               argMin((annotator_id, label), (partition, offset)) AS a
        FROM votes
        WHERE {all:Bool} OR comment_id IN {comments:Array(String)}
        GROUP BY topic, vote_id
    ),
    found AS
    (
        SELECT named.topic AS topic, named.partition AS partition, named.offset AS offset,
               arraySort(x -> tupleElement(x, 1), groupArray((named.n, v.a))) AS vs
        FROM named INNER JOIN v ON named.vote_topic = v.topic AND named.vote_id = v.vote_id
        GROUP BY named.topic, named.partition, named.offset
    )
SELECT
    l.topic, l.partition, l.offset, l.schema_version, l.comment_id, l.recorded_at,
    l.occurred_at, l.event_id, l.label, l.route, l.method, l.distribution,
    length(l.vote_ids) AS named, length(found.vs) AS resolved,
    arrayMap(x -> tupleElement(tupleElement(x, 2), 1), found.vs) AS vote_annotators,
    arrayMap(x -> tupleElement(tupleElement(x, 2), 2), found.vs) AS vote_labels,
    toUInt64(toUnixTimestamp64Nano(now64(9))) AS filled
FROM l LEFT JOIN found ON l.topic = found.topic AND l.partition = found.partition
    AND l.offset = found.offset
SETTINGS join_use_nulls = 0
