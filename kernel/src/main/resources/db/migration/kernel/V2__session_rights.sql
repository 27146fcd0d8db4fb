-- A session carries its principal's grants as LIKE patterns ('WRITE bench:%'), and every grant and
-- revoke rewrites those of the principal's open sessions in its own transaction. A system call's
-- check then reads the one session row it already needs: one index probe instead of two, which is
-- most of what the check costs.
ALTER TABLE sessions ADD COLUMN right_patterns text[] NOT NULL DEFAULT '{}';

-- The grants of a principal as "RIGHT prefix%" patterns, the prefix's LIKE metacharacters escaped:
-- a call needing RIGHT on OBJECT is allowed when 'RIGHT OBJECT' LIKE ANY of them.
CREATE FUNCTION right_patterns(principal bigint) RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(right_name || ' '
                            || replace(replace(replace(object_prefix, '\', '\\'), '%', '\%'), '_', '\_') || '%'
                            ORDER BY right_name, object_prefix), '{}')
  FROM grants WHERE principal_id = principal
$$;

UPDATE sessions SET right_patterns = right_patterns(principal_id) WHERE closed_at IS NULL;
