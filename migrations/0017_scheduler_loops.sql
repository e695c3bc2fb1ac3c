-- 0017_scheduler_loops: filled in by its issue's work
SELECT 1;
