-- The folder a single job's outputs are wanted in (`record_outputs_wanted`): while it is set,
-- the job's end records its output URLs as wanted, and the job is done only once all are saved.
ALTER TABLE runcomfy_jobs ADD COLUMN outputs_dir TEXT;
