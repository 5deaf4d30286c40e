//! Languages of pages and mail: one catalogue per language (`templates/i18n/<lang>.toml`,
//! embedded), the same keys in each (a test checks), no string in a template.
//!
//! Choice, first that applies: the signed-in user's saved locale, the language picked with the
//! switch on every page (a cookie), the relying party's `ui_locales`, the browser's
//! `Accept-Language`, English.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Fr,
}

pub const LANG_COOKIE: &str = "guichet_lang";

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// `fr`, `fr-FR`, `FR_ca`... → French; unknown tags → None.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The first supported tag of a space-separated `ui_locales`.
    pub fn from_ui_locales(raw: &str) -> Option<Lang> {
        raw.split_whitespace().find_map(Lang::parse)
    }

    /// The supported language the browser prefers most (RFC 9110 §12.5.4 weights).
    pub fn from_accept_language(raw: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, item) in raw.split(',').enumerate().take(32) {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else { continue };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            // Higher weight wins; among equals, the earlier one.
            if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i, lang));
            }
        }
        best.map(|(_, _, l)| l)
    }

    pub fn negotiate(
        saved: Option<&str>,
        cookie: Option<&str>,
        ui_locales: Option<&str>,
        accept_language: Option<&str>,
    ) -> Lang {
        saved
            .and_then(Lang::parse)
            .or_else(|| cookie.and_then(Lang::parse))
            .or_else(|| ui_locales.and_then(Lang::from_ui_locales))
            .or_else(|| accept_language.and_then(Lang::from_accept_language))
            .unwrap_or(Lang::En)
    }
}

/// The catalogues, parsed once.
pub struct Catalogues {
    en: Value,
    fr: Value,
}

const EN: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/i18n/en.toml"));
const FR: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/i18n/fr.toml"));

impl Catalogues {
    pub fn load() -> anyhow::Result<Self> {
        let parse = |name: &str, raw: &str| -> anyhow::Result<Value> {
            let t: toml::Value = toml::from_str(raw).map_err(|e| anyhow::anyhow!("catalogue {name}: {e}"))?;
            Ok(serde_json::to_value(t)?)
        };
        Ok(Self { en: parse("en", EN)?, fr: parse("fr", FR)? })
    }

    /// The whole catalogue of a language (templates read `t.section.key`).
    pub fn of(&self, lang: Lang) -> &Value {
        match lang {
            Lang::En => &self.en,
            Lang::Fr => &self.fr,
        }
    }

    /// One message by dotted key; the key itself when missing (visible, never a panic).
    pub fn t<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        let mut v = self.of(lang);
        for part in key.split('.') {
            match v.get(part) {
                Some(next) => v = next,
                None => return key,
            }
        }
        v.as_str().unwrap_or(key)
    }

    /// A message with `{name}` placeholders filled in.
    pub fn tf(&self, lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.t(lang, key).to_owned();
        for (k, v) in args {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }

    /// Every dotted key of a language's catalogue (for the same-keys check).
    pub fn keys(&self, lang: Lang) -> Vec<String> {
        fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, v) in m {
                        let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                        walk(&p, v, out);
                    }
                }
                _ => out.push(prefix.to_owned()),
            }
        }
        let mut out = Vec::new();
        walk("", self.of(lang), &mut out);
        out.sort();
        out
    }

    /// Placeholders (`{name}`) of each key, for the same-placeholders check.
    pub fn placeholders(&self, lang: Lang) -> BTreeMap<String, Vec<String>> {
        self.keys(lang)
            .into_iter()
            .map(|k| {
                let text = self.t(lang, &k);
                let mut ph: Vec<String> = text
                    .split('{')
                    .skip(1)
                    .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
                    .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .collect();
                ph.sort();
                (k, ph)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_have_the_same_keys_and_placeholders() {
        let c = Catalogues::load().unwrap();
        let (en, fr) = (c.keys(Lang::En), c.keys(Lang::Fr));
        let only_en: Vec<_> = en.iter().filter(|k| !fr.contains(k)).collect();
        let only_fr: Vec<_> = fr.iter().filter(|k| !en.contains(k)).collect();
        assert!(only_en.is_empty() && only_fr.is_empty(), "only in en: {only_en:?}; only in fr: {only_fr:?}");
        assert_eq!(c.placeholders(Lang::En), c.placeholders(Lang::Fr), "placeholders differ");
        for lang in Lang::ALL {
            for k in c.keys(lang) {
                assert!(!c.t(lang, &k).trim().is_empty(), "{k} is empty in {lang:?}");
            }
        }
    }

    #[test]
    fn negotiation_order() {
        assert_eq!(Lang::negotiate(Some("fr"), Some("en"), Some("en"), Some("en")), Lang::Fr);
        assert_eq!(Lang::negotiate(None, Some("fr"), Some("en"), None), Lang::Fr);
        assert_eq!(Lang::negotiate(None, None, Some("de fr-CA en"), Some("en")), Lang::Fr);
        assert_eq!(Lang::negotiate(None, None, None, Some("de-DE,fr;q=0.8,en;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(None, None, None, Some("fr-FR,fr;q=0.9,en;q=0.8")), Lang::Fr);
        assert_eq!(Lang::negotiate(None, None, None, Some("en;q=0,fr;q=0.1")), Lang::Fr);
        assert_eq!(Lang::negotiate(None, None, None, None), Lang::En);
        assert_eq!(Lang::negotiate(Some("xx"), None, None, Some("garbage")), Lang::En);
    }
}
