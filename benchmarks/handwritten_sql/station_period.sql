-- Incident counts per station and period. A station's window runs from start_at
-- (inclusive) to end_before (exclusive); an incident counts in the window of the station
-- it was assigned to (incident_base.station_id).
SELECT
    w.station_id,
    w.period,
    SUM(CASE WHEN ib.incident_key IS NOT NULL THEN 1 ELSE 0 END) AS incidents,
    SUM(CASE WHEN ib.police_response THEN 1 ELSE 0 END) AS police_response,
    SUM(CASE WHEN ib.tagged THEN 1 ELSE 0 END) AS mh_tagged,
    SUM(CASE WHEN ib.marked THEN 1 ELSE 0 END) AS mh_marked,
    SUM(CASE WHEN ib.tagged OR ib.marked THEN 1 ELSE 0 END) AS mh_calls,
    SUM(CASE WHEN (ib.tagged OR ib.marked) AND ib.out_of_hours THEN 1 ELSE 0 END)
        AS mh_out_of_hours,
    SUM(CASE WHEN (ib.tagged OR ib.marked) AND NOT ib.out_of_hours THEN 1 ELSE 0 END)
        AS mh_office_hours,
    SUM(CASE WHEN ib.contaminated THEN 1 ELSE 0 END) AS contaminated
FROM windows AS w
LEFT JOIN incident_base AS ib
    ON ib.station_id = w.station_id
    AND ib.created_at >= w.start_at
    AND ib.created_at < w.end_before
GROUP BY w.station_id, w.period
