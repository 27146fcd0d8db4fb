-- A grant names either every object whose name starts with object_prefix (exact false) or the one
-- object named object_prefix (exact true): etcd's permission on a single key is the second kind, and
-- must not cover the keys that extend it.
ALTER TABLE grants ADD COLUMN exact boolean NOT NULL DEFAULT false;
ALTER TABLE grants DROP CONSTRAINT grants_pkey;
ALTER TABLE grants ADD PRIMARY KEY (principal_id, right_name, object_prefix, exact);

-- V3's patterns, without the trailing % for an exact grant.
CREATE OR REPLACE FUNCTION right_patterns(principal bigint) RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(DISTINCT right_name || ' '
                            || replace(replace(replace(object_prefix, '\', '\\'), '%', '\%'), '_', '\_')
                            || CASE WHEN exact THEN '' ELSE '%' END), '{}')
  FROM grants
  WHERE principal_id = principal OR principal_id IN (SELECT role_id FROM principal_roles WHERE principal_id = principal)
$$;
