CREATE TABLE disclosure_witness_state (
    origin TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    root TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE disclosure_witness_fork (
    origin TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    known_size BIGINT NOT NULL,
    known_root TEXT NOT NULL,
    offered_size BIGINT NOT NULL,
    offered_note TEXT NOT NULL
);
CREATE INDEX disclosure_witness_fork_by_origin ON disclosure_witness_fork (origin, seen_at);
