-- Row security exists on PostgreSQL alone.
SELECT 1;
