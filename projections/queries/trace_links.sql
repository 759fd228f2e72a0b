-- trace_links: what one comment caused after its label: the reliability updates of the
-- annotators who voted on it (caused by one of its events, or with a window covering its
-- votes), the exports whose positions and time include one of its labels, and the models
-- trained on those exports. Parameters come from the comment's trace rows.
--
-- How it stays fast: each linked table is read once, into a scalar (arrays of event ids and
-- their link), and the linked events are then one primary-key lookup in `events` (comment_id
-- '' and a constant set of event ids: both key columns). reliability is keyed by annotator_id,
-- exports and models are small. (The earlier formulation named its link sets as CTEs used
-- twice each, IN and JOIN, which ClickHouse evaluates once per use: the exports four times.)
-- Parameters: event_ids Array(String) (the comment's event ids),
--             annotators Array(String) (its voters and reviewers),
--             first_at DateTime64(3, 'UTC'), last_at DateTime64(3, 'UTC') (its first and last
--             vote), labels String (JSON [[schema_version, recorded_at_ms, topic, partition,
--             offset], ...] of its LabelCommitted rows)
WITH
    (
        SELECT (groupArray(event_id),
                groupArray(if(has({event_ids:Array(String)}, causation_id),
                              'caused by this comment', 'reliability window covers its votes')))
        FROM reliability FINAL
        WHERE has({annotators:Array(String)}, annotator_id)
          AND (has({event_ids:Array(String)}, causation_id)
               OR (window_start IS NOT NULL AND window_end IS NOT NULL
                   AND window_start <= {last_at:DateTime64(3, 'UTC')}
                   AND {first_at:DateTime64(3, 'UTC')} < window_end))
    ) AS reliability_links,
    (
        SELECT (groupArray(x.event_id), groupArray(x.export_id))
        FROM (SELECT * FROM exports FINAL) AS x
        WHERE arrayExists(
            l -> l.1 = x.schema_version
                 AND fromUnixTimestamp64Milli(l.2, 'UTC') <= x.as_of
                 AND arrayExists(
                        p -> p.topic = l.3 AND p.partition = l.4 AND l.5 < p.offset,
                        x.log_positions),
            JSONExtract({labels:String}, 'Array(Tuple(String, Int64, String, UInt32, UInt64))'))
    ) AS used_by,
    (
        SELECT (groupArray(event_id), groupArray(export_id))
        FROM models FINAL
        WHERE has(used_by.2, export_id)
    ) AS trained
SELECT occurred_at, recorded_at, event_type, producer, annotator_id, schema_version, event_id,
       causation_id, payload, topic, partition, offset,
       multiIf(has(reliability_links.1, event_id),
               reliability_links.2[indexOf(reliability_links.1, event_id)],
               has(used_by.1, event_id), 'export includes its label',
               concat('trained on export ', trained.2[indexOf(trained.1, event_id)])) AS link
FROM events FINAL
WHERE comment_id = ''
  AND has(arrayConcat(reliability_links.1, used_by.1, trained.1), event_id)
ORDER BY occurred_at, event_type, event_id
LIMIT 1 BY event_id
SETTINGS max_threads = 1
