-- Webhooks: an organization's callback URLs and the events each wants (secrets sealed), and
-- every delivery attempt (the delivery log; the event is kept for redelivery). Deliveries are
-- jobs of the durable outbox.

CREATE TABLE webhooks (
    id                      UUID    PRIMARY KEY,
    org_id                  UUID    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url                     TEXT    NOT NULL,
    events                  TEXT    NOT NULL, -- space-separated event types
    secret_sealed           TEXT    NOT NULL,
    previous_secret_sealed  TEXT,
    previous_until          BIGINT,
    created_at              BIGINT  NOT NULL,
    updated_at              BIGINT  NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id);

CREATE TABLE webhook_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    webhook_id   UUID    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id     TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    attempt      BIGINT  NOT NULL,
    at           BIGINT  NOT NULL,
    status       BIGINT,
    error        TEXT,
    duration_ms  BIGINT  NOT NULL,
    payload      TEXT    NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
