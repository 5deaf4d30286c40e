-- The audit log's context: where the change came from (client IP, user agent; cleared when the
-- account is deleted), the organization it concerns (no foreign key: the entries of a deleted
-- organization stay until the retention purge) and how it ended (success, failure, denied).
ALTER TABLE audit_events ADD COLUMN ip TEXT;
ALTER TABLE audit_events ADD COLUMN user_agent TEXT;
ALTER TABLE audit_events ADD COLUMN org_id BLOB;
ALTER TABLE audit_events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'success';

-- Organizations' entries written before: their subject is org:<id>.
UPDATE audit_events SET org_id = (SELECT o.id FROM orgs o WHERE 'org:' || lower(
    substr(hex(o.id), 1, 8) || '-' || substr(hex(o.id), 9, 4) || '-' || substr(hex(o.id), 13, 4) || '-' ||
    substr(hex(o.id), 17, 4) || '-' || substr(hex(o.id), 21, 12)) = audit_events.subject)
WHERE subject LIKE 'org:%';

-- The searches: per organization, per actor, per action, newest first (id).
CREATE INDEX audit_events_org ON audit_events (org_id, id);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_action ON audit_events (action, id);
