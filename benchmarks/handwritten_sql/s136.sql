-- Section 136 detentions per station and period. A detention belongs to the station of
-- the incident it arose from: the linked incident, if it was created at most a day
-- before the detention (a power used at the scene, so a link to an older incident is
-- taken to be a recording error). Otherwise it belongs to the detaining officer's home
-- station on the day. It counts in that station's window by its detention time.
WITH located AS (
    SELECT
        s.s136_key,
        s.detained_at,
        COALESCE(ib.station_id, o.station_id) AS station_id
    FROM s136 AS s
    LEFT JOIN incident_base AS ib
        ON ib.incident_id = s.incident_id
        AND ib.created_at <= s.detained_at
        AND ib.created_at >= s.detained_at - INTERVAL 1 DAY
    LEFT JOIN officers AS o
        ON o.officer_key = s.officer_key
        AND CAST(s.detained_at AS DATE) >= o.posted_from
        AND (o.posted_to IS NULL OR CAST(s.detained_at AS DATE) <= o.posted_to)
)
SELECT w.station_id, w.period, COUNT(l.s136_key) AS s136
FROM windows AS w
LEFT JOIN located AS l
    ON l.station_id = w.station_id
    AND l.detained_at >= w.start_at
    AND l.detained_at < w.end_before
GROUP BY w.station_id, w.period
