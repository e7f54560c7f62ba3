-- One row per incident inside a trial window: its station (by the protocol's rule), and
-- the flags every outcome is built from. Inputs: the imported extracts (incidents,
-- incident_officers, incident_tags, incident_persons, warning_markers, officers, beats),
-- the allocation (arms: station_id, arm), the windows' time spans merged so that they do
-- not overlap (spans: start_at, end_before) and the protocol's settings (params,
-- tag_codes, marker_codes, response_grades, bank_holidays). Incidents outside every span
-- can count towards no outcome, so they are left out first.
WITH scoped AS MATERIALIZED (
    SELECT i.*
    FROM incidents AS i
    JOIN spans AS s ON i.created_at >= s.start_at AND i.created_at < s.end_before
    UNION ALL
    -- An incident whose Section 136 detention falls in a span, so that the detention
    -- counts at the incident's station even when the incident began just before it. A
    -- detention arises from an incident created at most a day earlier (see s136.sql).
    SELECT DISTINCT i.*
    FROM incidents AS i
    JOIN s136 AS d ON d.incident_key = i.incident_key
    JOIN spans AS s ON d.detained_at >= s.start_at AND d.detained_at < s.end_before
    WHERE i.created_at <= d.detained_at
        AND i.created_at >= d.detained_at - INTERVAL 1 DAY
        AND NOT EXISTS (
            SELECT 1 FROM spans AS o WHERE i.created_at >= o.start_at AND i.created_at < o.end_before
        )
),
posting AS (
    -- Each attending officer with their home station on the day of the incident.
    SELECT io.incident_key, io.officer_key, io.role, o.station_id
    FROM incident_officers AS io
    JOIN scoped AS i ON i.incident_key = io.incident_key
    LEFT JOIN officers AS o
        ON o.officer_key = io.officer_key
        AND CAST(i.created_at AS DATE) >= o.posted_from
        AND (o.posted_to IS NULL OR CAST(i.created_at AS DATE) <= o.posted_to)
),
ranked AS (
    SELECT
        incident_key,
        station_id,
        ROW_NUMBER() OVER (
            PARTITION BY incident_key
            ORDER BY
                CASE WHEN station_id IS NULL THEN 1 ELSE 0 END,
                CASE WHEN role = 'lead' THEN 0 ELSE 1 END,
                officer_key
        ) AS rank_in_incident
    FROM posting
),
officer_station AS (
    -- The lead officer's station (or the first attending officer with a known station).
    SELECT incident_key, station_id
    FROM ranked
    WHERE rank_in_incident = 1 AND station_id IS NOT NULL
),
attendance AS (
    SELECT
        p.incident_key,
        COUNT(*) AS officers,
        COUNT(DISTINCT a.arm) AS arms_attending
    FROM posting AS p
    LEFT JOIN arms AS a ON a.station_id = p.station_id
    GROUP BY p.incident_key
),
tagged AS (
    SELECT DISTINCT t.incident_key
    FROM incident_tags AS t
    JOIN tag_codes AS c ON c.code = t.qualifier
    JOIN scoped AS i ON i.incident_key = t.incident_key
),
marked AS (
    -- A linked person held a counting marker on the incident's date.
    SELECT DISTINCT ip.incident_key
    FROM incident_persons AS ip
    JOIN scoped AS i ON i.incident_key = ip.incident_key
    JOIN warning_markers AS m ON m.person_key = ip.person_key
    JOIN marker_codes AS mc ON mc.code = m.marker
    WHERE m.valid_from <= CAST(i.created_at AS DATE)
        AND (m.valid_to IS NULL OR m.valid_to >= CAST(i.created_at AS DATE))
)
SELECT
    i.incident_key,
    i.created_at,
    i.grade,
    b.station_id AS station_by_location,
    os.station_id AS station_by_officer,
    CASE
        WHEN p.assignment = 'location' THEN b.station_id
        ELSE COALESCE(os.station_id, b.station_id)
    END AS station_id,
    COALESCE(att.officers, 0) > 0 AS attended,
    COALESCE(att.arms_attending, 0) > 1 AS contaminated,
    t.incident_key IS NOT NULL AS tagged,
    mk.incident_key IS NOT NULL AS marked,
    (rg.grade IS NOT NULL AND COALESCE(att.officers, 0) > 0) AS police_response,
    NOT (
        ISODOW(i.created_at) <= 5
        AND bh.day IS NULL
        AND HOUR(i.created_at) * 60 + MINUTE(i.created_at) >= p.office_start_minute
        AND HOUR(i.created_at) * 60 + MINUTE(i.created_at) < p.office_end_minute
    ) AS out_of_hours
FROM scoped AS i
CROSS JOIN params AS p
LEFT JOIN beats AS b ON b.beat = i.beat
LEFT JOIN officer_station AS os ON os.incident_key = i.incident_key
LEFT JOIN attendance AS att ON att.incident_key = i.incident_key
LEFT JOIN tagged AS t ON t.incident_key = i.incident_key
LEFT JOIN marked AS mk ON mk.incident_key = i.incident_key
LEFT JOIN response_grades AS rg ON rg.grade = i.grade
LEFT JOIN bank_holidays AS bh ON bh.day = CAST(i.created_at AS DATE)
