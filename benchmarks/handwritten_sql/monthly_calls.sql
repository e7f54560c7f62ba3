-- Monthly counts per station for the report's time series: every incident in the extract
-- (incident_base built over one span from the first to the last incident), assigned to
-- stations by the protocol's rule, exactly as the outcomes are. Inputs: incident_base.
-- A mental-health call is tagged or marked, as in the mh_calls outcome.
SELECT
    station_id,
    CAST(date_trunc('month', created_at) AS DATE) AS month,
    COUNT(*) AS incidents,
    COUNT(*) FILTER (WHERE tagged OR marked) AS mh_calls
FROM incident_base
WHERE station_id IS NOT NULL
GROUP BY station_id, CAST(date_trunc('month', created_at) AS DATE)
ORDER BY month, station_id
