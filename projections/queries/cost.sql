-- cost: what each final label cost, by the route that produced it: the crowd assignments of its
-- item (redundancy), the honeypots injected beside them (a honeypot task's causation is the
-- crowd task it was injected with), and the expert assignments of its adjudication. Spend on
-- items without a final label yet is shown as route '(no final label)'; 'ALL' is the total.
-- Parameters: schema_version String ('' for all)
WITH
    owners AS (
        SELECT t.task_id AS task_id, t.kind AS kind, t.schema_version AS schema_version,
               if(t.kind = 'honeypot', p.comment_id, t.comment_id) AS owner
        FROM (SELECT * FROM tasks FINAL) AS t
        LEFT JOIN (SELECT event_id, comment_id FROM tasks FINAL) AS p
            ON p.event_id = t.causation_id
    ),
    spend AS (
        SELECT o.owner AS comment_id, o.schema_version AS schema_version,
               sumIf(a.cost_usd, o.kind = 'crowd') AS crowd_usd,
               sumIf(a.cost_usd, o.kind = 'honeypot') AS honeypot_usd,
               sumIf(a.cost_usd, o.kind = 'expert') AS expert_usd,
               countIf(o.kind = 'crowd') AS crowd_assignments,
               countIf(o.kind = 'honeypot') AS honeypot_assignments,
               countIf(o.kind = 'expert') AS expert_assignments
        FROM (SELECT task_id, cost_usd FROM assignments FINAL) AS a
        INNER JOIN owners AS o ON o.task_id = a.task_id
        GROUP BY comment_id, schema_version
    )
SELECT
    if(grouping(final_route) = 1, 'ALL', final_route) AS route,
    countIf(has_label) AS labels,
    sum(c_usd) AS crowd_usd,
    sum(h_usd) AS honeypot_usd,
    sum(e_usd) AS expert_usd,
    crowd_usd + honeypot_usd + expert_usd AS total_usd,
    if(labels > 0, total_usd / labels, NULL) AS usd_per_label,
    if(labels > 0, sum(c_n) / labels, NULL) AS crowd_votes_per_label,
    sum(h_n) AS honeypots,
    sum(e_n) AS expert_reviews
FROM
(
    SELECT if(l.comment_id = '', '(no final label)', l.route) AS final_route,
           l.comment_id != '' AS has_label,
           coalesce(sp.crowd_usd, 0) AS c_usd, coalesce(sp.honeypot_usd, 0) AS h_usd,
           coalesce(sp.expert_usd, 0) AS e_usd,
           coalesce(sp.crowd_assignments, 0) AS c_n,
           coalesce(sp.honeypot_assignments, 0) AS h_n,
           coalesce(sp.expert_assignments, 0) AS e_n
    FROM (SELECT * FROM v_current_labels
          WHERE {schema_version:String} = '' OR schema_version = {schema_version:String}) AS l
    FULL OUTER JOIN (SELECT * FROM spend
          WHERE {schema_version:String} = '' OR schema_version = {schema_version:String}) AS sp
        ON sp.comment_id = l.comment_id AND sp.schema_version = l.schema_version
)
GROUP BY ROLLUP(final_route)
ORDER BY route = 'ALL', route
