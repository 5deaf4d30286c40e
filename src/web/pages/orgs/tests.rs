//! Rendering of the organization pages.

use crate::i18n::Lang;
use crate::render::{Templates, Ui};

/// The organization pages render in both languages with a full context, escape values and
/// carry the ids and field names the forms are known by.
#[test]
fn org_pages_render_with_their_forms() {
    let t = Templates::new().unwrap();
    let uid = "6f1c1b2e-8a7d-4c55-9a52-0d2a6c3c2b11";
    let rid = "0d2a6c3c-8a7d-4c55-9a52-6f1c1b2e2b11";
    let ctx = serde_json::json!({
        "title": "T", "csrf_token": "c", "section": "members", "platform": false, "can_delete": true,
        "my_role": "owner", "notice": "n", "error": "e", "org_roles": ["owner", "admin", "member"],
        "org": {"id": "x", "slug": "acme", "name": "<script>x</script>", "require_sso": true, "mfa_required": false,
                "accent_color": "#1a4d8f", "logo": "/orgs/acme/logo?v=1"},
        "member_count": "2", "domain_count": "1", "verified_count": "0", "role_count": "1",
        "members": [{"user_id": uid, "email": "a@example.com", "name": "A", "role": "admin", "is_self": true,
                     "joined": "j", "roles": [{"id": rid, "client_id": "app", "name": "viewer"}]}],
        "roles": [{"id": rid, "label": "app/viewer", "own": true}],
        "clients": [{"client_id": "app", "name": "App", "permissions": ["orders:read"],
                     "new_choices": [{"name": "orders:read", "key": "p2"}],
                     "roles": [{"id": rid, "name": "viewer", "own": true, "permissions": ["orders:read"],
                                "choices": [{"name": "orders:read", "checked": true, "key": "p1"}]},
                               {"id": uid, "name": "op", "own": false, "permissions": ["orders:read"], "choices": []}]}],
        "can_create": true,
        "domains": [{"domain": "acme.test", "record_name": "_guichet-challenge.acme.test", "challenge": "v",
                     "verified": false, "verified_at": "", "last_error": "no TXT record", "last_checked": "l"}],
        "webhooks": [{"id": "w1", "url": "https://hooks.example.com/<script>x</script>", "events": ["login.succeeded"],
                      "created": "c", "previous_until": "p",
                      "deliveries": [{"id": "7", "at": "a", "at_iso": "2026-01-01T00:00:00Z", "event_type": "login.succeeded",
                                      "event_id": "evt_1", "attempt": "1", "status": null, "error": "timed out",
                                      "ok": false, "duration_ms": "12"}]}],
        "event_types": [{"type": "login.succeeded", "key": "login_succeeded"}],
        "secret": {"value": "whsec_abc", "url": "https://hooks.example.com/h"},
        "devkeys": [{"id": "gk_k1", "name": "<script>x</script>", "scopes": ["read", "write"], "created": "c",
                     "last_used": null, "expires": "2030-01-01 00:00 UTC", "expired": true}],
        "scopes": ["read", "write"], "api_base": "https://id.example.com/api/v1",
        "devsecret": {"key": "gk_k1", "name": "ci", "value": "gs_abc"},
        "orgs": [{"slug": "acme", "name": "Acme", "role": "owner", "admin": true},
                 {"slug": "other", "name": "Other", "role": "member", "admin": false}],
    });
    let expect: &[(&str, &[&str])] = &[
        ("orgs.html", &["href=\"/orgs/acme\""]),
        ("org.html", &["href=\"/orgs/acme/members\"", "href=\"/orgs/acme/settings\""]),
        (
            "org_members.html",
            &[
                "id=\"invite-form\"",
                "action=\"/orgs/acme/members/invite\"",
                &format!("id=\"member-role-{uid}\""),
                &format!("id=\"member-remove-{uid}\""),
                "id=\"grant-form\"",
                &format!("id=\"revoke-{uid}-{rid}\""),
            ],
        ),
        (
            "org_roles.html",
            &["id=\"role-form\"", &format!("id=\"role-perms-{rid}\""), &format!("id=\"role-delete-{rid}\"")],
        ),
        (
            "org_domains.html",
            &[
                "id=\"domain-form\"",
                "id=\"verify-acme.test\"",
                "id=\"remove-acme.test\"",
                "<code class=\"txt-name\">_guichet-challenge.acme.test</code>",
                "<code class=\"txt-value\">v</code>",
            ],
        ),
        (
            "org_webhooks.html",
            &[
                "id=\"webhook-form\"",
                "action=\"/orgs/acme/webhooks\"",
                "id=\"event-login.succeeded\" name=\"events\" type=\"checkbox\" value=\"login.succeeded\"",
                "id=\"webhook-w1\"",
                "id=\"webhook-rotate-w1\"",
                "id=\"webhook-delete-w1\"",
                "id=\"deliveries-w1\"",
                "id=\"redeliver-7\"",
                "name=\"delivery\" value=\"7\"",
                "timed out",
                "12 ms",
                "id=\"webhook-secret\"",
                "value=\"whsec_abc\"",
                "id=\"copy-secret\"",
                "id=\"nav-webhooks\"",
            ],
        ),
        (
            "org_devkeys.html",
            &[
                "id=\"devkey-form\"",
                "action=\"/orgs/acme/keys\"",
                "id=\"scope-read\" name=\"scope\" type=\"radio\" value=\"read\" checked",
                "id=\"scope-write\" name=\"scope\" type=\"radio\" value=\"write\"",
                "name=\"expires_days\" type=\"number\"",
                "id=\"devkey-gk_k1\" class=\"expired\"",
                "read, write",
                "id=\"devkey-reset-gk_k1\"",
                "action=\"/orgs/acme/keys/gk_k1/reset\"",
                "id=\"devkey-delete-gk_k1\"",
                "id=\"devkey-confirm-gk_k1\" name=\"confirm\"",
                "id=\"devkey-secret\"",
                "value=\"gs_abc\"",
                "id=\"copy-devsecret\"",
                "src=\"/static/copy.js\"",
                "curl -u gk_k1:DEVSECRET https:&#x2F;&#x2F;id.example.com&#x2F;api&#x2F;v1&#x2F;orgs&#x2F;acme",
                "href=\"/api/v1/openapi.json\"",
                "id=\"nav-keys\"",
            ],
        ),
        (
            "org_settings.html",
            &[
                "id=\"settings-form\"",
                "id=\"logo-form\"",
                "enctype=\"multipart/form-data\"",
                "id=\"logo-remove\"",
                "id=\"delete-form\"",
            ],
        ),
    ];
    for lang in Lang::ALL {
        let ui = Ui::new(lang, "/orgs/acme");
        for (name, ids) in expect {
            let html = t.page(&ui, name, &ctx).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(!html.contains("<script>x</script>"), "{name} does not escape");
            for id in *ids {
                assert!(html.contains(id), "{name} ({lang:?}) lacks {id}");
            }
            assert!(!html.contains("orgs.admin."), "{name} ({lang:?}) shows a catalogue key");
            assert!(!html.contains("orgs.webhooks."), "{name} ({lang:?}) shows a catalogue key");
            assert!(!html.contains("orgs.devkeys."), "{name} ({lang:?}) shows a catalogue key");
            if *name == "org_webhooks.html" {
                let help = t.t(lang, "orgs.webhooks.event_help.login_succeeded");
                assert!(html.contains(help), "{name} ({lang:?}) describes the events");
            }
            // Without their data too (the shared fixture of every template has none).
            let bare = serde_json::json!({"title": "T", "csrf_token": "c", "error": "e", "name": "N",
                "orgs": [{"id": "i", "slug": "s", "name": "n"}]});
            t.page(&ui, name, &bare).unwrap_or_else(|e| panic!("{name} without data: {e:?}"));
        }
    }
}
