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
