-- trace_links as it was before the scalar link sets (CTEs used twice, each run once per use).
-- Kept as the reference its replacement must equal (tests/audit/test_trace.py) and as the peer
-- of ops/bench/audit.py.
WITH
    used_by AS (
        SELECT x.event_id AS event_id, x.export_id AS export_id
        FROM (SELECT * FROM exports FINAL) AS x
        WHERE arrayExists(
            l -> l.1 = x.schema_version
                 AND fromUnixTimestamp64Milli(l.2, 'UTC') <= x.as_of
                 AND arrayExists(
                        p -> p.topic = l.3 AND p.partition = l.4 AND l.5 < p.offset,
                        x.log_positions),
            JSONExtract({labels:String}, 'Array(Tuple(String, Int64, String, UInt32, UInt64))'))
    ),
    linked AS (
        SELECT event_id,
               if(has({event_ids:Array(String)}, causation_id), 'caused by this comment',
                  'reliability window covers its votes') AS link
        FROM reliability FINAL
        WHERE has({annotators:Array(String)}, annotator_id)
          AND (has({event_ids:Array(String)}, causation_id)
               OR (window_start IS NOT NULL AND window_end IS NOT NULL
                   AND window_start <= {last_at:DateTime64(3, 'UTC')}
                   AND {first_at:DateTime64(3, 'UTC')} < window_end))
        UNION ALL
        SELECT event_id, 'export includes its label' AS link FROM used_by
        UNION ALL
        SELECT event_id, concat('trained on export ', export_id) AS link FROM models FINAL
        WHERE export_id IN (SELECT export_id FROM used_by)
    )
SELECT e.occurred_at AS occurred_at, e.recorded_at AS recorded_at, e.event_type AS event_type,
       e.producer AS producer, e.annotator_id AS annotator_id,
       e.schema_version AS schema_version, e.event_id AS event_id,
       e.causation_id AS causation_id, e.payload AS payload, e.topic AS topic,
       e.partition AS partition, e.offset AS offset, k.link AS link
FROM (SELECT * FROM events FINAL
      WHERE comment_id = '' AND event_id IN (SELECT event_id FROM linked)) AS e
INNER JOIN linked AS k ON e.event_id = k.event_id
ORDER BY occurred_at, event_type, event_id
LIMIT 1 BY event_id
