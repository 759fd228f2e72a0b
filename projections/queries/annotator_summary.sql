-- annotator_summary: one annotator's record: registration (pool, locale, consent), votes and
-- what they cost, honeypot accuracy, accuracy on gold items, agreement with final labels,
-- how often an expert overrode them, their expert reviews, and their latest reliability
-- estimate. known: whether anything names the annotator (registration, assignment, vote,
-- review, reliability update); labeltrail audit annotator refuses an unknown id. Times are
-- NULL, not 1970, when there is no vote.
-- Parameters: annotator String
SELECT
    {annotator:String} AS annotator_id,
    pool IS NOT NULL OR votes > 0 OR assigned > 0 OR honeypots > 0 OR reviews > 0
        OR reliability IS NOT NULL AS known,
    (SELECT anyOrNull(pool) FROM annotators FINAL
     WHERE annotator_id = {annotator:String}) AS pool,
    (SELECT anyOrNull(locale) FROM annotators FINAL
     WHERE annotator_id = {annotator:String}) AS locale,
    (SELECT anyOrNull(consented) FROM annotators FINAL
     WHERE annotator_id = {annotator:String}) AS consented,
    (SELECT count() FROM votes FINAL WHERE annotator_id = {annotator:String}) AS votes,
    (SELECT minOrNull(occurred_at) FROM votes FINAL
     WHERE annotator_id = {annotator:String}) AS first_vote_at,
    (SELECT maxOrNull(occurred_at) FROM votes FINAL
     WHERE annotator_id = {annotator:String}) AS last_vote_at,
    (SELECT count() FROM assignments FINAL WHERE annotator_id = {annotator:String}) AS assigned,
    (SELECT sum(cost_usd) FROM assignments FINAL
     WHERE annotator_id = {annotator:String}) AS cost_usd,
    (SELECT count() FROM honeypot_results FINAL
     WHERE annotator_id = {annotator:String}) AS honeypots,
    (SELECT avgOrNull(toFloat64(correct)) FROM honeypot_results FINAL
     WHERE annotator_id = {annotator:String}) AS honeypot_accuracy,
    (SELECT count() FROM v_gold_votes WHERE annotator_id = {annotator:String}) AS gold_votes,
    (SELECT avgOrNull(toFloat64(correct)) FROM v_gold_votes
     WHERE annotator_id = {annotator:String}) AS gold_accuracy,
    (SELECT avgOrNull(toFloat64(v.label = l.label))
     FROM (SELECT * FROM votes FINAL WHERE annotator_id = {annotator:String}) AS v
     INNER JOIN v_current_labels AS l
        ON l.comment_id = v.comment_id AND l.schema_version = v.schema_version
    ) AS agreement_with_final,
    (SELECT count()
     FROM (SELECT * FROM votes FINAL WHERE annotator_id = {annotator:String}) AS v
     INNER JOIN (SELECT * FROM labels FINAL WHERE route = 'adjudication' AND run_id = '') AS l
        ON l.comment_id = v.comment_id AND l.schema_version = v.schema_version
     WHERE has(l.vote_ids, v.vote_id) AND v.label != l.label) AS overridden,
    (SELECT count() FROM adjudications FINAL WHERE reviewer_id = {annotator:String}) AS reviews,
    (SELECT argMaxOrNull(accuracy, (recorded_at, event_id)) FROM reliability FINAL
     WHERE annotator_id = {annotator:String}) AS reliability
