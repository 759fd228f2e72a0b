-- calibration: the consensus confidence's calibration maps (CalibrationFitted, fitted by the
-- reliability stage on gold items), each with its reliability diagram (equal-width confidence
-- bins: items, mean confidence and accuracy on gold, before and after the map), its ECE
-- before and after, and how many committed labels were gated with it (a label names its map
-- in method_params['calibration']; docs/quality.md, "Calibrated confidence").
-- Parameters: schema_version String ('' = every version)
SELECT c.event_id AS calibration_id, c.occurred_at AS fitted_at, c.window_end AS window_end,
       c.schema_version AS schema_version, c.method AS method, c.temperature AS temperature,
       c.n_gold AS n_gold, c.ece_before AS ece_before, c.ece_after AS ece_after,
       c.bin_count_before AS bin_count_before,
       c.bin_confidence_before AS bin_confidence_before,
       c.bin_accuracy_before AS bin_accuracy_before,
       c.bin_count_after AS bin_count_after,
       c.bin_confidence_after AS bin_confidence_after,
       c.bin_accuracy_after AS bin_accuracy_after,
       ifNull(g.n_labels, 0) AS n_labels
FROM calibrations AS c FINAL
LEFT JOIN
(
    SELECT method_params['calibration'] AS calibration_id, count() AS n_labels
    FROM labels FINAL
    WHERE method_params['calibration'] != ''
    GROUP BY calibration_id
) AS g ON g.calibration_id = c.event_id
WHERE {schema_version:String} = '' OR c.schema_version = {schema_version:String}
ORDER BY c.schema_version, c.window_end, c.event_id
SETTINGS join_use_nulls = 1
