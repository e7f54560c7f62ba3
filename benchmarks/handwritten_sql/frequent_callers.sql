-- Frequent callers per station and period. Calls are incidents where the person has a
-- caller role, counted force-wide within the window (a person ringing from several
-- stations is one person). A person is frequent with at least fc_month calls in one
-- calendar month, or fc_quarter in three consecutive calendar months, of the window.
-- Each frequent caller is attributed to the station where they made most of the
-- window's calls (ties: the lowest station id), so nobody is counted twice.
WITH distinct_windows AS (
    SELECT DISTINCT start_at, end_before FROM windows
),
caller_links AS (
    -- Caller links of incidents in the windows' spans (a link carries its incident's
    -- created_at). A person linked to an incident in two caller roles has two rows here;
    -- calls are counted as distinct incidents below.
    SELECT ip.person_id, ip.incident_id, ip.age, ip.created_at
    FROM incident_persons AS ip
    JOIN caller_roles AS r ON r.role = ip.role
    JOIN spans AS s ON ip.created_at >= s.start_at AND ip.created_at < s.end_before
),
candidates AS (
    -- A frequent caller has fc_month calls in one calendar month, or fc_quarter in three,
    -- and so at least a third of fc_quarter in one of them. Anyone with fewer in every
    -- month (counted over all the spans, rows not incidents: too many, never too few)
    -- cannot be frequent in any window and is set aside before the work below.
    SELECT DISTINCT c.person_id
    FROM caller_links AS c
    CROSS JOIN params AS p
    GROUP BY c.person_id, YEAR(c.created_at) * 12 + MONTH(c.created_at), p.fc_month, p.fc_quarter
    HAVING COUNT(*) >= LEAST(p.fc_month, CEIL(p.fc_quarter / 3.0))
),
calls AS (
    -- One row per person and incident (a person in two caller roles made one call).
    SELECT c.person_id, ib.incident_id, ib.station_id, ib.created_at, MAX(c.age) AS age
    FROM caller_links AS c
    JOIN candidates AS k ON k.person_id = c.person_id
    JOIN incident_base AS ib ON ib.incident_id = c.incident_id
    GROUP BY c.person_id, ib.incident_id, ib.station_id, ib.created_at
),
in_window AS (
    SELECT
        dw.start_at,
        dw.end_before,
        c.person_id,
        c.incident_id,
        c.station_id,
        c.age,
        YEAR(c.created_at) * 12 + MONTH(c.created_at) AS month_index
    FROM calls AS c
    JOIN distinct_windows AS dw ON c.created_at >= dw.start_at AND c.created_at < dw.end_before
),
ages AS (
    -- The oldest age recorded for the person on a call in the window.
    SELECT start_at, end_before, person_id, MAX(age) AS oldest
    FROM in_window
    GROUP BY start_at, end_before, person_id
),
monthly AS (
    SELECT start_at, end_before, person_id, month_index, COUNT(*) AS n
    FROM in_window
    GROUP BY start_at, end_before, person_id, month_index
),
rolling AS (
    -- Calls in each month and in the three calendar months starting with it.
    SELECT m1.start_at, m1.end_before, m1.person_id, m1.month_index, m1.n, SUM(m2.n) AS n3
    FROM monthly AS m1
    JOIN monthly AS m2
        ON m2.start_at = m1.start_at
        AND m2.end_before = m1.end_before
        AND m2.person_id = m1.person_id
        AND m2.month_index BETWEEN m1.month_index AND m1.month_index + 2
    GROUP BY m1.start_at, m1.end_before, m1.person_id, m1.month_index, m1.n
),
frequent AS (
    SELECT r.start_at, r.end_before, r.person_id
    FROM rolling AS r
    CROSS JOIN params AS p
    LEFT JOIN ages AS a
        ON a.start_at = r.start_at AND a.end_before = r.end_before AND a.person_id = r.person_id
    WHERE NOT (p.adults_only AND a.oldest IS NOT NULL AND a.oldest < 18)
    GROUP BY r.start_at, r.end_before, r.person_id, p.fc_month, p.fc_quarter
    HAVING MAX(r.n) >= p.fc_month OR MAX(r.n3) >= p.fc_quarter
),
home AS (
    -- Each frequent caller's station of most calls in the window.
    SELECT start_at, end_before, person_id, station_id
    FROM (
        SELECT
            iw.start_at,
            iw.end_before,
            iw.person_id,
            iw.station_id,
            ROW_NUMBER() OVER (
                PARTITION BY iw.start_at, iw.end_before, iw.person_id
                ORDER BY COUNT(*) DESC, iw.station_id
            ) AS pick
        FROM in_window AS iw
        JOIN frequent AS f
            ON f.start_at = iw.start_at AND f.end_before = iw.end_before AND f.person_id = iw.person_id
        WHERE iw.station_id IS NOT NULL
        GROUP BY iw.start_at, iw.end_before, iw.person_id, iw.station_id
    ) AS counted
    WHERE pick = 1
)
SELECT w.station_id, w.period, COUNT(h.person_id) AS frequent_callers
FROM windows AS w
LEFT JOIN home AS h
    ON h.start_at = w.start_at AND h.end_before = w.end_before AND h.station_id = w.station_id
GROUP BY w.station_id, w.period
