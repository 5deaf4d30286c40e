-- Developer keys of a user, for their own apps: a key belongs to an organization (org_id) or to
-- a user (user_id), never both.

ALTER TABLE dev_keys ALTER COLUMN org_id DROP NOT NULL;
ALTER TABLE dev_keys ADD COLUMN user_id UUID REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE dev_keys ADD CONSTRAINT dev_keys_one_owner CHECK ((org_id IS NULL) <> (user_id IS NULL));
CREATE INDEX dev_keys_user ON dev_keys (user_id);
