-- model_calibration: the published models' auto-accept maps (ModelPublished.temperature,
-- fitted at publish on the model's own probabilities for the gold set), with the gold items
-- fitted on, the ECE before and after and the reliability diagram's bins (the metrics under
-- calibration.*: calibration.<before|after>.bin<k>.<n|confidence|accuracy>), and how many
-- scores were made under each and how many of those it auto-accepted (docs/quality.md,
-- "Calibrated confidence").
-- Parameters: model_version String ('' = every model)
SELECT m.model_version AS model_version, m.occurred_at AS published_at,
       m.schema_version AS schema_version, m.temperature AS temperature,
       toUInt64(m.metrics['calibration.n_gold']) AS n_gold,
       m.metrics['calibration.ece_before'] AS ece_before,
       m.metrics['calibration.ece_after'] AS ece_after,
       mapFilter((k, v) -> startsWith(k, 'calibration.'), m.metrics) AS figures,
       ifNull(s.n_scores, 0) AS n_scores, ifNull(s.n_auto_accept, 0) AS n_auto_accept
FROM models AS m FINAL
LEFT JOIN
(
    SELECT model_version, count() AS n_scores, countIf(route = 'auto_accept') AS n_auto_accept
    FROM scores FINAL
    WHERE temperature IS NOT NULL
    GROUP BY model_version
) AS s ON s.model_version = m.model_version
WHERE m.temperature IS NOT NULL
  AND ({model_version:String} = '' OR m.model_version = {model_version:String})
ORDER BY m.offset, m.event_id
SETTINGS join_use_nulls = 1
