-- A process task's stdout and stderr are now DBFS files, /tasks/ID/stdout and /tasks/ID/stderr
-- (org.dbos.kernel.scheduler.TaskOutput): read like any file, with the file system's permissions.
DROP TABLE task_output;
