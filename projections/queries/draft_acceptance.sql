-- draft_acceptance: how often humans keep the model's draft label, per schema version and draft
-- confidence band, for everyone ('*') and per annotator, beside how often the draft was right.
-- Acceptance well above the draft's own accuracy means annotators anchor on the model.
--
-- A vote counts when its task carried a draft (tasks.prelabel and prelabel_confidence set) and the
-- vote says the draft was shown (votes.prelabel_shown). It keeps the draft when its label equals
-- the draft. The draft is judged against the item's truth where one is known: the gold label if
-- the item is in the gold set, else the latest expert verdict (adjudication). Crowd consensus is
-- not used as truth: it is made of the very votes being judged, so anchored votes would make an
-- anchored draft look right. Like labeltrail.learning.prelabel.DraftAcceptance, draft accuracy is
-- counted per judged vote, band i is [edges[i], edges[i+1]) and the last band includes its top.
-- band 'all' sums every band. anchoring is set when at least min_judged votes were judged and
-- acceptance_rate - draft_accuracy > anchoring_alert.
-- Parameters: schema_version String ('' for every version), edges Array(Float64) (ascending,
--             at least two), anchoring_alert Float64, min_judged UInt64
SELECT
    schema_version,
    who AS annotator_id,
    if(band_index < 0, 'all', toString(band_index)) AS band,
    if(band_index < 0, edges_low, {edges:Array(Float64)}[band_index + 1]) AS band_low,
    if(band_index < 0, edges_high, {edges:Array(Float64)}[band_index + 2]) AS band_high,
    count() AS shown,
    countIf(human_label = draft_label) AS accepted,
    accepted / shown AS acceptance_rate,
    countIf(truth IS NOT NULL) AS judged,
    countIf(truth IS NOT NULL AND draft_label = truth) AS draft_correct,
    if(judged = 0, NULL, draft_correct / judged) AS draft_accuracy,
    acceptance_rate - draft_accuracy AS anchoring_gap,
    toBool(judged >= {min_judged:UInt64}
           AND ifNull(anchoring_gap > {anchoring_alert:Float64}, false)) AS anchoring
FROM
(
    SELECT
        v.schema_version AS schema_version,
        v.annotator_id AS annotator_id,
        v.label AS human_label,
        t.prelabel AS draft_label,
        g.truth AS truth,
        least(greatest(arrayCount(e -> e <= t.prelabel_confidence, {edges:Array(Float64)}) - 1, 0),
              length({edges:Array(Float64)}) - 2) AS band_of_vote,
        {edges:Array(Float64)}[1] AS edges_low,
        {edges:Array(Float64)}[-1] AS edges_high
    FROM
    (
        SELECT task_id, comment_id, schema_version, annotator_id, label
        FROM votes FINAL
        WHERE prelabel_shown
          AND ({schema_version:String} = '' OR schema_version = {schema_version:String})
    ) AS v
    INNER JOIN
    (
        SELECT task_id, assumeNotNull(prelabel) AS prelabel,
               assumeNotNull(prelabel_confidence) AS prelabel_confidence
        FROM tasks FINAL
        WHERE prelabel IS NOT NULL AND prelabel_confidence IS NOT NULL
    ) AS t ON t.task_id = v.task_id
    LEFT JOIN
    (
        -- gold first, else the latest expert verdict
        SELECT comment_id, schema_version,
               argMax(label, (is_gold, recorded_at, event_id)) AS truth
        FROM adjudications FINAL
        GROUP BY comment_id, schema_version
    ) AS g ON g.comment_id = v.comment_id AND g.schema_version = v.schema_version
)
ARRAY JOIN ['*', annotator_id] AS who
ARRAY JOIN [band_of_vote, -1] AS band_index
GROUP BY schema_version, who, band_index, edges_low, edges_high
ORDER BY schema_version, who = '*' DESC, who, band_index < 0, band_index
SETTINGS join_use_nulls = 1
