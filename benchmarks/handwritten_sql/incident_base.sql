-- One row per incident inside a trial window: its station (by the protocol's rule), and
-- the flags every outcome is built from. Inputs: the imported extracts (incidents,
-- incident_officers, incident_tags, incident_persons, warning_markers, officers, beats;
-- as policetrial stores them, the three link extracts carry their incident's created_at,
-- and incident and person keys have an incident_id or person_id beside them, which is
-- equal exactly when the keys are and is cheaper to join on: the key's 128 bits as a
-- UUID; a warehouse may pass the key itself),
-- the allocation (arms: station_id, arm), the windows' time spans merged so that they
-- neither overlap nor touch (spans: start_at, end_before; midnights, like the windows')
-- and the protocol's settings (params, tag_codes, marker_codes, response_grades,
-- bank_holidays). Incidents outside every span can count towards no outcome, so they are
-- left out first.
WITH scoped AS MATERIALIZED (
    SELECT i.incident_key, i.incident_id, i.created_at, i.grade, i.beat
    FROM incidents AS i
    JOIN spans AS s ON i.created_at >= s.start_at AND i.created_at < s.end_before
    UNION ALL
    -- An incident whose Section 136 detention falls in a span, so that the detention
    -- counts at the incident's station even when the incident began just before it. A
    -- detention arises from an incident created at most a day earlier (see s136.sql).
    SELECT DISTINCT i.incident_key, i.incident_id, i.created_at, i.grade, i.beat
    FROM incidents AS i
    JOIN s136 AS d ON d.incident_id = i.incident_id
    JOIN spans AS s ON d.detained_at >= s.start_at AND d.detained_at < s.end_before
    WHERE i.created_at <= d.detained_at
        AND i.created_at >= d.detained_at - INTERVAL 1 DAY
        AND NOT EXISTS (
            SELECT 1 FROM spans AS o WHERE i.created_at >= o.start_at AND i.created_at < o.end_before
        )
),
reach AS (
    -- Every scoped incident was created in a span or in the day before one, so link rows
    -- outside these can be left out by their own created_at, without joining incidents.
    -- Spans start and end at midnight and neither overlap nor touch, so these do not
    -- overlap either: a row joins at most one of them.
    SELECT start_at - INTERVAL 1 DAY AS start_at, end_before FROM spans
),
detained AS (
    -- Incidents a Section 136 detention arose from: it names the incident and came at
    -- most a day after it began (the same rule s136.sql uses to place detentions).
    SELECT DISTINCT i.incident_id
    FROM scoped AS i
    JOIN s136 AS d ON d.incident_id = i.incident_id
    WHERE i.created_at <= d.detained_at AND i.created_at >= d.detained_at - INTERVAL 1 DAY
),
postings AS (
    -- The roster's postings numbered by officer key, then station: the smallest number
    -- among an incident's officers picks the first officer in that order, and numbers
    -- are cheaper to compare than keys. Arms are numbered too.
    SELECT
        o.officer_key,
        o.station_id,
        o.posted_from,
        o.posted_to,
        ROW_NUMBER() OVER (ORDER BY o.officer_key, o.station_id, o.posted_from) AS posting_no,
        CASE WHEN a.arm IS NOT NULL THEN DENSE_RANK() OVER (ORDER BY a.arm) END AS arm_no
    FROM officers AS o
    LEFT JOIN arms AS a ON a.station_id = o.station_id
    WHERE o.station_id IS NOT NULL
),
posting AS (
    -- Each attending officer with their posting on the day of the incident (none if the
    -- officer's station that day is unknown).
    SELECT io.incident_id, io.role, o.posting_no, o.arm_no
    FROM incident_officers AS io
    LEFT JOIN postings AS o
        ON o.officer_key = io.officer_key
        AND CAST(io.created_at AS DATE) >= o.posted_from
        AND (o.posted_to IS NULL OR CAST(io.created_at AS DATE) <= o.posted_to)
    JOIN reach AS r ON io.created_at >= r.start_at AND io.created_at < r.end_before
),
attendance AS (
    -- One row per attended incident. The station is that of the lead officer, or of the
    -- first attending officer with a known station (leads first, then by officer key,
    -- then by station). Officers of both arms attended when the arms' numbers differ.
    SELECT
        incident_id,
        COUNT(*) AS officers,
        COALESCE(MIN(CASE WHEN role = 'lead' THEN posting_no END), MIN(posting_no))
            AS lead_posting,
        MIN(arm_no) <> MAX(arm_no) AS both_arms
    FROM posting
    GROUP BY incident_id
),
tagged AS (
    SELECT DISTINCT t.incident_id
    FROM incident_tags AS t
    JOIN tag_codes AS c ON c.code = t.qualifier
    JOIN reach AS r ON t.created_at >= r.start_at AND t.created_at < r.end_before
),
marked AS (
    -- A linked person held a counting marker on the incident's date.
    SELECT DISTINCT ip.incident_id
    FROM incident_persons AS ip
    JOIN warning_markers AS m ON m.person_id = ip.person_id
    JOIN marker_codes AS mc ON mc.code = m.marker
    JOIN reach AS r ON ip.created_at >= r.start_at AND ip.created_at < r.end_before
    WHERE m.valid_from <= CAST(ip.created_at AS DATE)
        AND (m.valid_to IS NULL OR m.valid_to >= CAST(ip.created_at AS DATE))
)
SELECT
    i.incident_key,
    i.incident_id,
    i.created_at,
    b.station_id AS station_by_location,
    lead.station_id AS station_by_officer,
    CASE
        WHEN p.assignment = 'location' THEN b.station_id
        ELSE COALESCE(lead.station_id, b.station_id)
    END AS station_id,
    COALESCE(att.officers, 0) > 0 AS attended,
    COALESCE(att.both_arms, FALSE) AS contaminated,
    t.incident_id IS NOT NULL AS tagged,
    mk.incident_id IS NOT NULL AS marked,
    (rg.grade IS NOT NULL AND COALESCE(att.officers, 0) > 0) AS police_response,
    d.incident_id IS NOT NULL AS s136,
    NOT (
        ISODOW(i.created_at) <= 5
        AND bh.day IS NULL
        AND HOUR(i.created_at) * 60 + MINUTE(i.created_at) >= p.office_start_minute
        AND HOUR(i.created_at) * 60 + MINUTE(i.created_at) < p.office_end_minute
    ) AS out_of_hours
FROM scoped AS i
CROSS JOIN params AS p
LEFT JOIN beats AS b ON b.beat = i.beat
LEFT JOIN attendance AS att ON att.incident_id = i.incident_id
LEFT JOIN postings AS lead ON lead.posting_no = att.lead_posting
LEFT JOIN tagged AS t ON t.incident_id = i.incident_id
LEFT JOIN marked AS mk ON mk.incident_id = i.incident_id
LEFT JOIN detained AS d ON d.incident_id = i.incident_id
LEFT JOIN response_grades AS rg ON rg.grade = i.grade
LEFT JOIN bank_holidays AS bh ON bh.day = CAST(i.created_at AS DATE)
