-- ambiguous_comments: comments whose crowd disagreed and an expert overrode the majority.
-- Parameters: limit UInt32
SELECT comment_id, any(JSONExtractString(payload, 'label')) AS label
FROM events FINAL
WHERE event_type = 'LabelCommitted'
  AND JSONExtractString(payload, 'route') = 'adjudication'
  AND length(JSONExtract(payload, 'vote_ids', 'Array(String)')) > 0
GROUP BY comment_id
ORDER BY comment_id
LIMIT {limit:UInt32}
