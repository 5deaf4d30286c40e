//! Rendering of the admin console pages.

use crate::i18n::Lang;
use crate::render::{Templates, Ui};

/// Every console page renders in both languages with a full context, escapes values (the
/// chart, drawn and escaped by `chart.rs`, aside) and carries the ids tests and browsers use.
#[test]
fn console_pages_render_with_their_ids() {
    let t = Templates::new().unwrap();
    let evil = "<script>x</script>";
    let uid = "6f1c1b2e-8a7d-4c55-9a52-0d2a6c3c2b11";
    let ctx = serde_json::json!({
        "title": "T", "admin": true, "section": "users", "csrf_token": "c", "notice": "n", "error": "e",
        "counts": {"users": "3", "active": "2", "pending": "1", "suspended": "0", "orgs": "1", "clients": "1",
                   "connections": "0"},
        "chart_svg": "<svg id=\"dashboard-chart\"></svg>", "sign_ins_total": "4", "failures_total": "5",
        "days": [{"date": "2026-05-01", "succeeded": "4", "failed": "5"}],
        "q": evil, "status": "active", "statuses": ["active", "pending", "suspended"],
        "users": [{"id": uid, "email": evil, "name": evil, "status": "active", "email_verified": true,
                   "is_admin": true, "created": "c"}],
        "total": "1", "page": "1", "pages": "2", "prev_url": null, "next_url": "/admin/users?page=2",
        "user": {"id": uid, "email": evil, "name": evil, "status": "suspended", "email_verified": false,
                 "is_admin": false, "created": "c", "phone": "", "updated": "u"},
        "is_self": false, "suspended": true, "factor_count": "1", "factor_kinds": ["totp"],
        "memberships": [{"slug": "acme", "name": evil, "role": "admin"}],
        "sessions": [{"signed_in": "s", "last_seen": "l", "ip": "127.0.0.1", "device": evil, "amr": "pwd"}],
        "session_count": "1",
    });
    let more = serde_json::json!({
        "history": [{"at": "a", "at_iso": "2026-05-01T00:00:00Z", "success": false, "method": "pwd", "ip": "i",
                     "device": evil}],
        "orgs": [{"slug": "acme", "name": evil, "require_sso": true, "mfa_required": false, "created": "c"}],
        "clients": [{"client_id": "app", "name": evil, "org": {"slug": "acme", "name": evil},
                     "grant_types": ["authorization_code"], "redirect_uris": ["https://rp.example.com/cb"],
                     "auth_method": "client_secret_basic", "first_party": true, "created": "c"}],
        "connections": [{"id": "c1", "name": evil, "type": "saml", "issuer": evil, "orgs": [{"slug": "acme", "name": "A"}],
                         "status": "active", "metadata": "failed", "refreshed": "r", "metadata_error": evil,
                         "updated": "u"}],
        "webhooks": [{"id": "w1", "url": evil, "events": ["login.failed"], "org": {"slug": "acme", "name": evil},
                      "created": "c", "last": {"ok": false, "at": "a", "at_iso": "2026-05-01T00:00:00Z",
                      "event_type": "login.failed", "status": "500", "error": "e", "attempt": "1"}}],
    });
    let mut ctx = ctx;
    for (k, v) in more.as_object().unwrap() {
        ctx[k] = v.clone();
    }
    let pages = [
        ("admin_dashboard.html", &["dashboard-chart", "dashboard-counts", "dashboard-table", "admin-nav-audit"][..]),
        ("admin_users.html", &["users-table", "users-search", "users-next"][..]),
        (
            "admin_user.html",
            &["user-actions", "resume-form", "reset-factors-form", "revoke-sessions-form", "delete-form"][..],
        ),
        ("admin_orgs.html", &["orgs-list", "orgs-table"][..]),
        ("admin_clients.html", &["clients-list", "clients-table"][..]),
        ("admin_connections.html", &["connections-list", "connections-table"][..]),
        ("admin_webhooks.html", &["webhooks-list", "webhooks-table"][..]),
    ];
    for lang in Lang::ALL {
        let ui = Ui::new(lang, "/admin");
        for (name, ids) in pages {
            let html = t.page(&ui, name, &ctx).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(!html.contains(evil), "{name} escapes");
            assert!(html.contains("id=\"admin-nav\""), "{name} has the navigation");
            for id in ids {
                assert!(html.contains(&format!("id=\"{id}\"")), "{name} has #{id}");
            }
        }
    }
}
