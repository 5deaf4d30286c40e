-- The audit log's context: where the change came from (client IP, user agent; cleared when the
-- account is deleted), the organization it concerns (no foreign key: the entries of a deleted
-- organization stay until the retention purge) and how it ended (success, failure, denied).
ALTER TABLE audit_events ADD COLUMN ip TEXT;
ALTER TABLE audit_events ADD COLUMN user_agent TEXT;
ALTER TABLE audit_events ADD COLUMN org_id UUID;
ALTER TABLE audit_events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'success';

-- Organizations' entries written before: their subject is org:<id>.
UPDATE audit_events SET org_id = o.id FROM orgs o WHERE audit_events.subject = 'org:' || o.id::text;

-- The searches: per organization, per actor, per action, newest first (id).
CREATE INDEX audit_events_org ON audit_events (org_id, id);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_action ON audit_events (action, id);
