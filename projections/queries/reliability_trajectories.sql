-- reliability_trajectories: every annotator's reliability over time: the estimates the
-- reliability stage recorded (source 'reliability') and, for every annotator, the running
-- honeypot accuracy (source 'honeypot'), for the report's trajectories chart. method: the
-- estimate's method ('beta_gold', 'dawid_skene', ...; 'running' for the honeypot rows).
-- Parameters: schema_version String ('' for every version)
SELECT * FROM (
    SELECT 'reliability' AS source, method, annotator_id, occurred_at AS at, accuracy
    FROM reliability FINAL
    WHERE {schema_version:String} = '' OR schema_version = {schema_version:String}
    UNION ALL
    SELECT 'honeypot' AS source, 'running' AS method, annotator_id, occurred_at AS at,
           sum(toFloat64(correct)) OVER w / count() OVER w AS accuracy
    FROM honeypot_results FINAL
    WHERE {schema_version:String} = '' OR schema_version = {schema_version:String}
    WINDOW w AS (PARTITION BY annotator_id ORDER BY occurred_at, event_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
ORDER BY annotator_id, source, method, at
