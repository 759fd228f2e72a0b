-- annotator_reliability: how an annotator's reliability moved: every AnnotatorReliabilityUpdated
-- (accuracy with its interval and the value it replaced), beside the running honeypot accuracy
-- (source 'honeypot', one point per honeypot, cumulative).
-- Parameters: annotator String
SELECT source, at, schema_version, method, accuracy, accuracy_lower, accuracy_upper,
       previous_accuracy, n_observations
FROM
(
    SELECT 'reliability' AS source, occurred_at AS at, schema_version, method, accuracy,
           CAST(accuracy_lower, 'Nullable(Float64)') AS accuracy_lower,
           CAST(accuracy_upper, 'Nullable(Float64)') AS accuracy_upper,
           previous_accuracy, n_observations
    FROM reliability FINAL
    WHERE annotator_id = {annotator:String}
    UNION ALL
    SELECT 'honeypot' AS source, occurred_at AS at, schema_version, 'running' AS method,
           sum(toFloat64(correct)) OVER w / count() OVER w AS accuracy,
           CAST(NULL, 'Nullable(Float64)'), CAST(NULL, 'Nullable(Float64)'),
           CAST(NULL, 'Nullable(Float64)'), toUInt64(count() OVER w) AS n_observations
    FROM honeypot_results FINAL
    WHERE annotator_id = {annotator:String}
    WINDOW w AS (PARTITION BY schema_version ORDER BY occurred_at, event_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
ORDER BY at, source
