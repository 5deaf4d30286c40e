//! Server-rendered pages. Templates are embedded in the binary (it runs from any directory) and
//! always end in `.html`, so Tera autoescapes every value.

use serde::Serialize;
use tera::{Context, Tera};

use super::error::ErrorPayload;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $name)))),*]
    };
}

pub const ALL: &[(&str, &str)] = &templates!(
    "base.html",
    "login.html",
    "home.html",
    "logout.html",
    "error.html",
    "consent.html",
    "select_account.html",
    "form_post.html",
    "end_session.html",
    "signed_out.html",
);

pub struct Templates {
    tera: Tera,
}

#[derive(Serialize)]
struct ErrorCtx<'a> {
    title: String,
    status: u16,
    message: &'a str,
    error_id: Option<&'a str>,
}

impl Templates {
    pub fn new() -> Result<Self, tera::Error> {
        let mut tera = Tera::default();
        tera.add_raw_templates(ALL.iter().copied())?;
        tera.autoescape_on(vec![".html"]);
        Ok(Self { tera })
    }

    pub fn render<C: Serialize>(&self, name: &str, ctx: &C) -> Result<String, tera::Error> {
        self.tera.render(name, &Context::from_serialize(ctx)?)
    }

    pub fn error_page(&self, p: &ErrorPayload) -> Result<String, tera::Error> {
        let title = axum::http::StatusCode::from_u16(p.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
            .to_owned();
        self.render(
            "error.html",
            &ErrorCtx { title, status: p.status, message: &p.error_description, error_id: p.error_id.as_deref() },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page renders with a fixture context, and values are escaped.
    #[test]
    fn every_template_renders_and_escapes() {
        let t = Templates::new().unwrap();
        let ctx = serde_json::json!({
            "title": "T", "csrf_token": "c", "email": "<script>x</script>", "return_to": "/", "error": "e",
            "client_name": "Orders", "name": "N", "apps": [{"client_id": "id", "name": "App", "scope": "openid"}],
            "status": 400, "message": "m", "error_id": "abc", "scopes": ["your email address"], "interaction": "i",
            "action": "https://rp.example.com/cb", "params": [["code", "x"], ["state", "y"]],
            "post_logout_redirect_uri": "", "state": "", "client_id": "id",
        });
        for (name, _) in ALL {
            if *name == "base.html" {
                continue;
            }
            let html = t.render(name, &ctx).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(!html.contains("<script>x</script>"), "{name} does not escape");
            assert!(html.contains("/static/guichet.css"), "{name} extends base.html");
        }
    }
}
