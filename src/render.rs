//! Rendering of pages and mail (Tera), shared by the web layer and the services that compose
//! mail; it knows no HTTP type.
//!
//! Server-rendered pages and mail. Templates are embedded in the binary (it runs from any
//! directory); pages end in `.html`, so Tera autoescapes every value. Every page gets `lang`,
//! `t` (the catalogue of its language) and `here` (for the language switch), so no template
//! holds a string of its own.

use serde::Serialize;
use tera::{Context, Tera};

use crate::i18n::{Catalogues, Lang};

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $name)))),*]
    };
}

pub const ALL: &[(&str, &str)] = &templates!(
    "base.html",
    "password_input.html",
    "login.html",
    "logout.html",
    "error.html",
    "consent.html",
    "select_account.html",
    "choose_org.html",
    "org_nav.html",
    "org_sso.html",
    "org_sso_test.html",
    "org_webhooks.html",
    "audit_log.html",
    "org_devkeys.html",
    "account_keys.html",
    "form_post.html",
    "end_session.html",
    "signed_out.html",
    "message.html",
    "confirm.html",
    "register.html",
    "password_form.html",
    "reset_request.html",
    "account.html",
    "account_email.html",
    "account_phone.html",
    "account_sessions.html",
    "account_delete.html",
    "second_factor.html",
    "security.html",
    "security_totp.html",
    "orgs.html",
    "org.html",
    "org_members.html",
    "org_roles.html",
    "org_domains.html",
    "org_settings.html",
    "admin_nav.html",
    "admin_dashboard.html",
    "admin_users.html",
    "admin_user.html",
    "admin_orgs.html",
    "admin_clients.html",
    "admin_connections.html",
    "admin_webhooks.html",
    "email/message.html",
    "email/message.txt",
);

pub struct Templates {
    tera: Tera,
    pub i18n: Catalogues,
}

/// The language of a page and where it is (the language switch comes back here).
#[derive(Debug, Clone)]
pub struct Ui {
    pub lang: Lang,
    /// This page's path and query, percent-encoded for a query parameter.
    pub here: String,
    /// The organization whose branding the page wears (its people's and clients' pages).
    pub brand: Option<Brand>,
}

/// An organization's branding as pages show it: name, logo, accent colour (served by Guichet as
/// `/orgs/<slug>/logo` and `/orgs/<slug>/brand.css`: no inline style, no third-party fetch).
#[derive(Debug, Clone, Serialize)]
pub struct Brand {
    pub slug: String,
    pub name: String,
    /// The logo's version (its digest), when there is a logo.
    pub logo: Option<String>,
    /// Changes with the settings, so caches of `brand.css` stay correct.
    pub version: i64,
    pub accent: bool,
}

impl Brand {
    pub fn of(org: &crate::domain::org::Org) -> Self {
        Brand {
            slug: org.slug.clone(),
            name: org.name.clone(),
            logo: org.logo_digest.clone(),
            version: org.updated_at.0,
            accent: org.accent_color.is_some(),
        }
    }
}

impl Ui {
    pub fn new(lang: Lang, path_and_query: &str) -> Self {
        let here = url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
        Self { lang, here, brand: None }
    }

    pub fn branded(mut self, org: Option<&crate::domain::org::Org>) -> Self {
        self.brand = org.map(Brand::of);
        self
    }

    pub fn t<'a>(&self, templates: &'a Templates, key: &'a str) -> &'a str {
        templates.i18n.t(self.lang, key)
    }
}

#[derive(Serialize)]
struct ErrorCtx<'a> {
    title: String,
    status: u16,
    message: &'a str,
    error_id: Option<&'a str>,
}

impl Templates {
    pub fn new() -> anyhow::Result<Self> {
        let mut tera = Tera::default();
        tera.add_raw_templates(ALL.iter().copied())?;
        tera.autoescape_on(vec![".html"]);
        Ok(Self { tera, i18n: Catalogues::load()? })
    }

    /// A page in the user's language.
    pub fn page<C: Serialize>(&self, ui: &Ui, name: &str, ctx: &C) -> Result<String, tera::Error> {
        let mut c = Context::from_serialize(ctx)?;
        c.insert("lang", ui.lang.code());
        c.insert("t", self.i18n.of(ui.lang));
        c.insert("here", &ui.here);
        if let Some(b) = &ui.brand {
            c.insert("brand", b);
        }
        self.tera.render(name, &c)
    }

    /// A mail body (`email/message.html` or `.txt`) in a language.
    pub fn mail<C: Serialize>(&self, lang: Lang, name: &str, ctx: &C) -> Result<String, tera::Error> {
        let mut c = Context::from_serialize(ctx)?;
        c.insert("lang", lang.code());
        c.insert("t", self.i18n.of(lang));
        self.tera.render(name, &c)
    }

    pub fn t<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        self.i18n.t(lang, key)
    }

    pub fn tf(&self, lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
        self.i18n.tf(lang, key, args)
    }

    /// The error page: `title` (the status's reason), the message (a catalogue key when there
    /// is one, else `description`), the error id of a 5xx.
    pub fn error_page(
        &self,
        ui: &Ui,
        status: u16,
        title: &str,
        message_key: Option<&str>,
        description: &str,
        error_id: Option<&str>,
    ) -> Result<String, tera::Error> {
        let message = match message_key {
            Some(k) => self.i18n.t(ui.lang, k),
            None => description,
        };
        self.page(ui, "error.html", &ErrorCtx { title: title.to_owned(), status, message, error_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partials and layouts: never rendered on their own.
    const PARTS: &[&str] = &["base.html", "password_input.html", "org_nav.html", "admin_nav.html"];

    /// Every page renders in both languages with a fixture context, and values are escaped.
    #[test]
    fn every_template_renders_and_escapes() {
        let t = Templates::new().unwrap();
        let ctx = serde_json::json!({
            "title": "T", "csrf_token": "c", "email": "<script>x</script>", "return_to": "/", "error": "e",
            "client_name": "Orders", "name": "N", "apps": [{"client_id": "id", "name": "App", "scope": "openid"}],
            "status": 400, "message": "m", "error_id": "abc", "scopes": ["email"], "interaction": "i",
            "action": "https://rp.example.com/cb", "params": [["code", "x"], ["state", "y"]],
            "post_logout_redirect_uri": "", "state": "", "client_id": "id", "paragraphs": ["p"], "message_id": "m",
            "token": "tok", "button": "b", "min_length": "8", "max_length": "4096", "terms_version": "1",
            "sessions": [{"handle": "h", "device": "d", "ip": "i", "last_seen": "l", "signed_in": "s", "current": false}],
            "history": [{"at": "a", "success": true, "method": "pwd", "ip": "i", "device": "d"}], "others": true,
            "step": "start", "pow_challenge": "c", "pow_difficulty": 16, "time_zones": ["Europe/Paris"],
            "greeting": "Hello", "action_url": "https://x", "action_text": "Go", "code": "123456", "subject": "s",
            "link_href": "/login", "link_id": "l", "link_text": "t", "registration_open": true,
        });
        let mut ctx = ctx;
        for (k, v) in [
            ("locale", "en"),
            ("time_zone", ""),
            ("phone", "+33612345678"),
            ("new_email", "n@example.com"),
            ("pending_phone", "+33612345678"),
        ] {
            ctx[k] = serde_json::json!(v);
        }
        ctx["phone_verified"] = serde_json::json!(true);
        ctx["factors"] =
            serde_json::json!([{"id": "f", "kind": "totp", "name": "App", "created": "c", "last_used": "l"}]);
        ctx["has_totp"] = serde_json::json!(true);
        ctx["recovery_left"] = serde_json::json!("10");
        ctx["qr_svg"] = serde_json::json!("<svg></svg>");
        ctx["secret"] = serde_json::json!("ABC");
        ctx["uri"] = serde_json::json!("otpauth://totp/x");
        ctx["required"] = serde_json::json!(false);
        ctx["webauthn"] = serde_json::json!(true);
        ctx["has_passkey"] = serde_json::json!(true);
        ctx["orgs"] = serde_json::json!([{"id": "o", "slug": "acme", "name": "<script>x</script>", "accent_color": "#123456", "logo_digest": "d"}]);
        for lang in Lang::ALL {
            let ui = Ui::new(lang, "/x?y=1");
            for (name, _) in ALL {
                if PARTS.contains(name) {
                    continue;
                }
                let html = if name.starts_with("email/") {
                    t.mail(lang, name, &ctx).unwrap_or_else(|e| panic!("{name}: {e:?}"))
                } else {
                    t.page(&ui, name, &ctx).unwrap_or_else(|e| panic!("{name}: {e:?}"))
                };
                if name.ends_with(".html") {
                    assert!(!html.contains("<script>x</script>"), "{name} does not escape");
                }
                if !name.starts_with("email/") {
                    assert!(html.contains("/static/guichet.css"), "{name} extends base.html");
                    assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())), "{name} has its language");
                    assert!(html.contains("id=\"lang-fr\""), "{name} has the language switch");
                }
            }
        }
    }

    /// No template holds text of its own outside `{{ }}`: a crude check that every visible
    /// word comes from the catalogue (tags, attributes and Tera syntax aside).
    #[test]
    fn templates_hold_no_words_of_their_own() {
        for (name, src) in ALL {
            let mut text = String::new();
            let mut depth = 0;
            let mut chars = src.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '<' => depth += 1,
                    '>' if depth > 0 => depth -= 1,
                    '{' if matches!(chars.peek(), Some('{') | Some('%')) => {
                        // Skip to the closing }} or %}.
                        let mut prev = ' ';
                        for c2 in chars.by_ref() {
                            if c2 == '}' && (prev == '}' || prev == '%') {
                                break;
                            }
                            prev = c2;
                        }
                    }
                    _ if depth == 0 => text.push(c),
                    _ => {}
                }
            }
            let words: Vec<&str> = text
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| w.len() > 1 && *w != "Guichet" && *w != "nbsp")
                .collect();
            assert!(words.is_empty(), "{name} holds words outside the catalogue: {words:?}");
        }
    }
}
