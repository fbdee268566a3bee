CREATE TABLE disclosure_job (
    name TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL,
    summary TEXT NOT NULL
);
