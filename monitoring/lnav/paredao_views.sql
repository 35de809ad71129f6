-- Saved SQL views over the Paredão JSON-lines logs (format "paredao_log",
-- see paredao_log.json beside this file). lnav runs this file at start-up
-- when it sits in a formats folder of its configuration (monitoring/logs.sh
-- arranges that). Times are compared as text in lnav's local time: run lnav
-- with TZ=UTC (logs.sh does) so that they match the UTC "ts" field.

-- Events per level in the last minute; always the four levels, zero if none.
CREATE VIEW IF NOT EXISTS paredao_levels_last_minute AS
WITH levels(ord, level) AS (
    VALUES (1, 'ERROR'), (2, 'WARNING'), (3, 'INFO'), (4, 'DEBUG')
)
SELECT levels.level AS level,
       (SELECT count(*) FROM paredao_log
         WHERE upper(paredao_log.log_level) = levels.level
           AND paredao_log.log_time >= datetime('now', '-1 minute')) AS events
  FROM levels
 ORDER BY levels.ord;

-- The last 20 ERROR lines, newest first.
CREATE VIEW IF NOT EXISTS paredao_last_errors AS
SELECT log_time, logger, log_body AS message, route, status, request_id
  FROM paredao_log
 WHERE log_level = 'error'
 ORDER BY log_time DESC, log_line DESC
 LIMIT 20;

-- HTTP outcomes in the last minute: requests logged per route and status.
CREATE VIEW IF NOT EXISTS paredao_http_last_minute AS
SELECT route, status, count(*) AS events,
       max(log_time) AS last_seen
  FROM paredao_log
 WHERE route IS NOT NULL
   AND log_time >= datetime('now', '-1 minute')
 GROUP BY route, status
 ORDER BY events DESC, route, status;
