-- The first layout of the job store (SQLite). Times are milliseconds since the Unix epoch.

CREATE TABLE runcomfy_batches (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    model_id      TEXT    NOT NULL,
    row_count     INTEGER NOT NULL,
    rows_sha256   TEXT    NOT NULL,
    -- Actual costs, and estimates where no actual cost is known, of rows out of the queue.
    committed_usd REAL    NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE runcomfy_jobs (
    id                 INTEGER PRIMARY KEY,
    batch_id           INTEGER REFERENCES runcomfy_batches (id),
    line               INTEGER,
    model_id           TEXT    NOT NULL,
    input              TEXT    NOT NULL,
    input_sha256       TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    request_id         TEXT,
    worker_id          TEXT,
    output             TEXT,
    error              TEXT,
    cost_usd           REAL,
    estimated_cost_usd REAL,
    -- What this row adds to its batch's committed_usd.
    charged_usd        REAL    NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    submitted_at       INTEGER,
    finished_at        INTEGER,
    run_ms             INTEGER
);

CREATE UNIQUE INDEX runcomfy_jobs_batch_line ON runcomfy_jobs (batch_id, line) WHERE batch_id IS NOT NULL;
CREATE INDEX runcomfy_jobs_batch_state ON runcomfy_jobs (batch_id, state, line) WHERE batch_id IS NOT NULL;
CREATE INDEX runcomfy_jobs_state ON runcomfy_jobs (state, batch_id);
CREATE INDEX runcomfy_jobs_single ON runcomfy_jobs (id) WHERE batch_id IS NULL;
CREATE UNIQUE INDEX runcomfy_jobs_request ON runcomfy_jobs (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX runcomfy_jobs_worker ON runcomfy_jobs (worker_id) WHERE worker_id IS NOT NULL;
-- Rows with a request id whose worker died: what a claim re-attaches.
CREATE INDEX runcomfy_jobs_orphans ON runcomfy_jobs (batch_id, line) WHERE worker_id IS NULL AND state IN ('submitted', 'saving');
CREATE INDEX runcomfy_jobs_durations ON runcomfy_jobs (model_id, finished_at) WHERE run_ms IS NOT NULL;

CREATE TABLE runcomfy_outputs (
    job_id   INTEGER NOT NULL REFERENCES runcomfy_jobs (id),
    url      TEXT    NOT NULL,
    path     TEXT,
    saved_at INTEGER,
    PRIMARY KEY (job_id, url)
);

CREATE TABLE runcomfy_workers (
    worker_id   TEXT    PRIMARY KEY,
    lease_until INTEGER NOT NULL
);
CREATE INDEX runcomfy_workers_lease ON runcomfy_workers (lease_until);

CREATE TABLE runcomfy_throttle (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    until_ms INTEGER NOT NULL
);
