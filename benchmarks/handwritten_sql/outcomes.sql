-- The Connect trial's outcomes per station and period in one statement: the strongest
-- DuckDB SQL we could write by hand for what policetrial derives from the protocol, the
-- baseline of benchmarks/bench_outcomes.py. Codes, office hours and thresholds are the
-- Connect protocol's, written in (the benchmark checks that the tables agree exactly).
--
-- Inputs: the stored extracts as views that keep only the rows near the windows
-- (incidents, incident_officers, incident_tags, incident_persons, warning_markers, s136,
-- as `register_parquet` makes them), officers and beats, the windows (windows:
-- station_id, arm, period, start_at, end_before; spans: the windows' time spans merged),
-- the arms and the working days (every weekday that is not a bank holiday).
--
-- What makes it fast: each extract read once (the incidents and the person links through
-- common tables, so the detentions' earlier incidents, the markers and the callers share
-- one scan); keys joined as 128-bit ids and never read as text; one row per incident kept,
-- with only the columns the counts use; callers who cannot be frequent set aside first;
-- three-month sums as a window function rather than a self-join.
WITH
near AS (
    SELECT incident_id, created_at, beat, grade FROM incidents
),
scoped AS MATERIALIZED (
    SELECT i.* FROM near AS i
    JOIN spans AS s ON i.created_at >= s.start_at AND i.created_at < s.end_before
    UNION ALL
    SELECT DISTINCT i.*
    FROM near AS i
    JOIN s136 AS d ON d.incident_id = i.incident_id
    JOIN spans AS s ON d.detained_at >= s.start_at AND d.detained_at < s.end_before
    WHERE i.created_at <= d.detained_at AND i.created_at >= d.detained_at - INTERVAL 1 DAY
      AND NOT EXISTS (SELECT 1 FROM spans AS o WHERE i.created_at >= o.start_at AND i.created_at < o.end_before)
),
links AS (
    SELECT incident_id, person_id, role, age, created_at FROM incident_persons
),
postings AS (
    SELECT o.officer_key, o.station_id, o.posted_from, o.posted_to,
        ROW_NUMBER() OVER (ORDER BY o.officer_key, o.station_id, o.posted_from) AS posting_no,
        CASE WHEN a.arm IS NOT NULL THEN DENSE_RANK() OVER (ORDER BY a.arm) END AS arm_no
    FROM officers AS o LEFT JOIN arms AS a ON a.station_id = o.station_id
    WHERE o.station_id IS NOT NULL
),
attendance AS (
    SELECT io.incident_id, COUNT(*) AS officers,
        COALESCE(MIN(CASE WHEN io.role = 'lead' THEN o.posting_no END), MIN(o.posting_no)) AS lead_posting,
        MIN(o.arm_no) <> MAX(o.arm_no) AS both_arms
    FROM incident_officers AS io
    LEFT JOIN postings AS o ON o.officer_key = io.officer_key
        AND CAST(io.created_at AS DATE) >= o.posted_from
        AND (o.posted_to IS NULL OR CAST(io.created_at AS DATE) <= o.posted_to)
    GROUP BY io.incident_id
),
tagged AS (
    SELECT DISTINCT incident_id FROM incident_tags WHERE qualifier IN ('QMH', 'QD4', 'SG1', 'QVU')
),
marked AS (
    SELECT DISTINCT ip.incident_id
    FROM links AS ip
    JOIN warning_markers AS m ON m.person_id = ip.person_id
    WHERE m.marker IN ('MN', 'XM') AND m.valid_from <= CAST(ip.created_at AS DATE)
      AND (m.valid_to IS NULL OR m.valid_to >= CAST(ip.created_at AS DATE))
),
base AS MATERIALIZED (
    SELECT i.incident_id, i.created_at,
        COALESCE(lead.station_id, b.station_id) AS station_id,
        COALESCE(i.grade IN ('Immediate', 'Priority', 'Scheduled'), FALSE) AND att.officers IS NOT NULL AS police_response,
        COALESCE(att.both_arms, FALSE) AS contaminated,
        t.incident_id IS NOT NULL AS tagged,
        m.incident_id IS NOT NULL AS marked,
        NOT (wd.day IS NOT NULL AND HOUR(i.created_at) * 60 + MINUTE(i.created_at) BETWEEN 540 AND 1019) AS out_of_hours
    FROM scoped AS i
    LEFT JOIN beats AS b ON b.beat = i.beat
    LEFT JOIN attendance AS att ON att.incident_id = i.incident_id
    LEFT JOIN postings AS lead ON lead.posting_no = att.lead_posting
    LEFT JOIN working_days AS wd ON wd.day = CAST(i.created_at AS DATE)
    LEFT JOIN tagged AS t ON t.incident_id = i.incident_id
    LEFT JOIN marked AS m ON m.incident_id = i.incident_id
),
counts AS (
    SELECT w.station_id, w.period,
        COUNT(*) AS incidents,
        COUNT(*) FILTER (WHERE ib.police_response) AS police_response,
        COUNT(*) FILTER (WHERE ib.tagged) AS mh_tagged,
        COUNT(*) FILTER (WHERE ib.marked) AS mh_marked,
        COUNT(*) FILTER (WHERE ib.tagged OR ib.marked) AS mh_calls,
        COUNT(*) FILTER (WHERE (ib.tagged OR ib.marked) AND ib.out_of_hours) AS mh_out_of_hours,
        COUNT(*) FILTER (WHERE (ib.tagged OR ib.marked) AND NOT ib.out_of_hours) AS mh_office_hours,
        COUNT(*) FILTER (WHERE ib.contaminated) AS contaminated
    FROM base AS ib
    JOIN windows AS w ON ib.station_id = w.station_id AND ib.created_at >= w.start_at AND ib.created_at < w.end_before
    GROUP BY w.station_id, w.period
),
calls AS (
    SELECT ip.person_id, ib.station_id, ib.created_at, MAX(ip.age) AS age
    FROM links AS ip
    JOIN base AS ib ON ib.incident_id = ip.incident_id
    WHERE ip.role = 'caller'
      AND ip.person_id IN (
          SELECT person_id FROM links
          WHERE role = 'caller'
          GROUP BY person_id, YEAR(created_at) * 12 + MONTH(created_at)
          HAVING COUNT(*) >= 4)
    GROUP BY ip.person_id, ib.incident_id, ib.station_id, ib.created_at
),
in_window AS (
    SELECT dw.start_at, dw.end_before, c.person_id, c.station_id, c.age,
        YEAR(c.created_at) * 12 + MONTH(c.created_at) AS month_index
    FROM calls AS c
    JOIN (SELECT DISTINCT start_at, end_before FROM windows) AS dw
      ON c.created_at >= dw.start_at AND c.created_at < dw.end_before
),
monthly AS (
    SELECT start_at, end_before, person_id, month_index, COUNT(*) AS n, MAX(age) AS oldest
    FROM in_window GROUP BY ALL
),
frequent AS (
    SELECT start_at, end_before, person_id
    FROM (
        SELECT start_at, end_before, person_id, n, oldest,
            SUM(n) OVER (PARTITION BY start_at, end_before, person_id ORDER BY month_index
                         RANGE BETWEEN CURRENT ROW AND 2 FOLLOWING) AS n3
        FROM monthly)
    GROUP BY start_at, end_before, person_id
    HAVING (MAX(n) >= 5 OR MAX(n3) >= 12) AND NOT COALESCE(MAX(oldest) < 18, FALSE)
),
home AS (
    SELECT iw.start_at, iw.end_before, iw.station_id
    FROM in_window AS iw
    JOIN frequent AS f USING (start_at, end_before, person_id)
    WHERE iw.station_id IS NOT NULL
    GROUP BY iw.start_at, iw.end_before, iw.person_id, iw.station_id
    QUALIFY ROW_NUMBER() OVER (PARTITION BY iw.start_at, iw.end_before, iw.person_id ORDER BY COUNT(*) DESC, iw.station_id) = 1
),
frequent_callers AS (
    SELECT w.station_id, w.period, COUNT(*) AS frequent_callers
    FROM home AS h JOIN windows AS w ON w.start_at = h.start_at AND w.end_before = h.end_before AND w.station_id = h.station_id
    GROUP BY w.station_id, w.period
),
detentions AS (
    SELECT w.station_id, w.period, COUNT(*) AS s136
    FROM s136 AS e
    LEFT JOIN base AS ib ON ib.incident_id = e.incident_id AND ib.created_at <= e.detained_at
        AND ib.created_at >= e.detained_at - INTERVAL 1 DAY
    LEFT JOIN officers AS o ON o.officer_key = e.officer_key AND CAST(e.detained_at AS DATE) >= o.posted_from
        AND (o.posted_to IS NULL OR CAST(e.detained_at AS DATE) <= o.posted_to)
    JOIN windows AS w ON w.station_id = COALESCE(ib.station_id, o.station_id)
        AND e.detained_at >= w.start_at AND e.detained_at < w.end_before
    GROUP BY w.station_id, w.period
)
SELECT w.station_id, w.period,
    COALESCE(c.incidents, 0) AS incidents, COALESCE(c.police_response, 0) AS police_response,
    COALESCE(c.mh_tagged, 0) AS mh_tagged, COALESCE(c.mh_marked, 0) AS mh_marked,
    COALESCE(c.mh_calls, 0) AS mh_calls, COALESCE(c.mh_out_of_hours, 0) AS mh_out_of_hours,
    COALESCE(c.mh_office_hours, 0) AS mh_office_hours,
    COALESCE(f.frequent_callers, 0) AS frequent_callers, COALESCE(d.s136, 0) AS s136,
    COALESCE(c.contaminated, 0) AS contaminated
FROM windows AS w
LEFT JOIN counts AS c USING (station_id, period)
LEFT JOIN frequent_callers AS f USING (station_id, period)
LEFT JOIN detentions AS d USING (station_id, period)
ORDER BY w.period, w.station_id
