-- relabel_labels: the labels of record `labeltrail relabel --source clickhouse` recomputes:
-- each (schema version, comment)'s latest live label (v_current_labels' order: recorded time,
-- event time, event id) among the rows read from the labels topic before the positions the
-- projection covers (the projector's consumer_positions, passed in: a batch written but not
-- yet recorded is left out), one row per item in (schema version, comment id) order, every
-- field of the label and where it was read. No FINAL: a batch projected twice gives the same
-- row twice, and argMax takes either.
-- Parameters: topic String, partitions Array(UInt32), ends Array(UInt64)
SELECT
    schema_version,
    comment_id,
    latest.1 AS label,
    latest.2 AS route,
    latest.3 AS method,
    latest.4 AS distribution,
    latest.5 AS event_id,
    latest.6 AS label_id,
    latest.7 AS classes,
    latest.8 AS confidence,
    latest.9 AS method_params,
    latest.10 AS vote_ids,
    latest.11 AS annotator_ids,
    latest.12 AS adjudication_id,
    latest.13 AS machine_made,
    latest.14 AS gold_label,
    latest.15 AS occurred_ms,
    latest.16 AS recorded_ms,
    latest.17 AS partition,
    latest.18 AS offset
FROM
(
    SELECT
        schema_version,
        comment_id,
        argMax(
            tuple(label, route, method, distribution, event_id, label_id, classes, confidence,
                  method_params, vote_ids, annotator_ids, adjudication_id, machine_made,
                  gold_label, toUnixTimestamp64Milli(occurred_at),
                  toUnixTimestamp64Milli(recorded_at), partition, offset),
            (recorded_at, occurred_at, event_id)) AS latest
    FROM labels
    WHERE topic = {topic:String} AND run_id = ''
      AND offset < transform(partition, {partitions:Array(UInt32)}, {ends:Array(UInt64)}, toUInt64(0))
    GROUP BY schema_version, comment_id
)
ORDER BY schema_version, comment_id
