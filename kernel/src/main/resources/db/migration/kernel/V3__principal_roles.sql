-- Roles: a principal of kind 'role' holds grants like any other, and a principal that is granted a
-- role holds the role's grants too (the kernel's rights check reads both). etcd's roles are these.
ALTER TABLE principals DROP CONSTRAINT principals_kind_check;
ALTER TABLE principals ADD CONSTRAINT principals_kind_check CHECK (kind IN ('user', 'service', 'node', 'role'));

CREATE TABLE principal_roles (
  principal_id bigint NOT NULL REFERENCES principals ON DELETE CASCADE,
  role_id      bigint NOT NULL REFERENCES principals ON DELETE CASCADE,
  PRIMARY KEY (principal_id, role_id)
);

-- A session carries the grants of its principal and of the principal's roles (V2's patterns).
CREATE OR REPLACE FUNCTION right_patterns(principal bigint) RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(DISTINCT right_name || ' '
                            || replace(replace(replace(object_prefix, '\', '\\'), '%', '\%'), '_', '\_') || '%'), '{}')
  FROM grants
  WHERE principal_id = principal OR principal_id IN (SELECT role_id FROM principal_roles WHERE principal_id = principal)
$$;
