//! HTML (escaped by hand: every dynamic value goes through [`escape`]), the stylesheet, the
//! web app manifest, the icon and the service worker.

/// The pages the service worker may cache: the public shell only. Kept in one place and
/// written into `sw.js`; no page behind sign-in is ever in it.
pub const SHELL: &[&str] = &["/", "/app.css", "/app.js", "/manifest.webmanifest", "/icon.svg"];

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `main` (already HTML: built from escaped values).
pub fn layout(title: &str, main: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="theme-color" content="{THEME}">
<title>{title} · Customer portal</title>
<link rel="manifest" href="/manifest.webmanifest">
<link rel="icon" href="/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
<a class="brand" href="/">Customer portal</a>
<nav><a href="/orders">Orders</a> <a href="/galleries">Galleries</a> <a href="/billing">Billing</a></nav>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>
</header>
<main>
{main}
</main>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// `/`: public and cached by the service worker, so it names nobody.
pub fn home() -> String {
    layout(
        "Welcome",
        r#"<h1>Customer portal</h1>
<p>Orders, galleries and billing of your organization. Sign-in is handled by Guichet.</p>
<p><a class="button" href="/login">Sign in</a></p>"#,
    )
}

pub fn gated(title: &str, who: &str, org: Option<&str>, permission: &str) -> String {
    let org = org.map(|o| format!(" ({})", escape(o))).unwrap_or_default();
    layout(
        title,
        &format!(
            "<h1>{t}</h1>\n<p>Signed in as {who}{org}.</p>\n<p class=\"ok\">You hold <code>{p}</code>.</p>",
            t = escape(title),
            who = escape(who),
            p = escape(permission),
        ),
    )
}

pub fn forbidden(title: &str, who: &str, permission: &str) -> String {
    layout(
        "Not allowed",
        &format!(
            "<h1>{t}: not allowed</h1>\n<p>Signed in as {who}, without the permission <code>{p}</code>.</p>\n\
             <p>An administrator of your organization can grant a role that holds it.</p>",
            t = escape(title),
            who = escape(who),
            p = escape(permission),
        ),
    )
}

pub fn problem(message: &str) -> String {
    layout(
        "Sign-in problem",
        &format!("<h1>Sign-in problem</h1>\n<p>{}</p>\n<p><a href=\"/login\">Sign in again</a></p>", escape(message)),
    )
}

pub fn logout_form() -> String {
    layout(
        "Sign out",
        r#"<h1>Sign out</h1>
<form method="post" action="/logout"><button type="submit">Sign out of the portal and Guichet</button></form>"#,
    )
}

pub const THEME: &str = "#1a4d8f";

pub const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b}\
header{display:flex;gap:1rem;align-items:center;padding:.75rem 1rem;background:#1a4d8f;color:#fff}\
header a{color:#fff}.brand{font-weight:bold;text-decoration:none}nav{flex:1}header form{margin:0}\
main{max-width:48rem;margin:2rem auto;padding:0 1rem}.ok{color:#14632b}\
.button{display:inline-block;padding:.5rem 1rem;background:#1a4d8f;color:#fff;text-decoration:none}\n";

pub const APP_JS: &str = "if ('serviceWorker' in navigator) { navigator.serviceWorker.register('/sw.js'); }\n";

pub const ICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512"><rect width="512" height="512" rx="96" fill="#1a4d8f"/><path d="M128 368V176l128-64 128 64v192H304V256h-96v112z" fill="#fff"/></svg>
"##;

pub fn manifest() -> String {
    serde_json::json!({
        "name": "Customer portal",
        "short_name": "Portal",
        "description": "Orders, galleries and billing; sign-in with Guichet",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME,
        "icons": [
            {"src": "/icon.svg", "sizes": "any", "type": "image/svg+xml", "purpose": "any"}
        ]
    })
    .to_string()
}

/// The service worker: the public shell is served network-first with the cache as the offline
/// fallback; every other request (pages behind sign-in, /login, /callback, /logout, Guichet)
/// is left to the network and never stored.
pub fn service_worker() -> String {
    let shell = serde_json::to_string(SHELL).unwrap_or_else(|_| "[]".into());
    format!(
        r#"// Customer portal service worker. Caches the public shell only; authenticated pages
// (/orders, /galleries, /billing), the sign-in round trip and Guichet are network-only.
const CACHE = 'portal-shell-v1';
const SHELL = {shell};

self.addEventListener('install', (event) => {{
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
}});

self.addEventListener('activate', (event) => {{
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
}});

self.addEventListener('fetch', (event) => {{
  const req = event.request;
  const url = new URL(req.url);
  // Network-only: anything that is not a GET of the public shell of this origin.
  if (req.method !== 'GET' || url.origin !== self.location.origin || url.search !== '' || !SHELL.includes(url.pathname)) {{
    return;
  }}
  event.respondWith(
    fetch(req)
      .then((res) => {{
        if (res.ok && res.type === 'basic' && !res.redirected) {{
          const copy = res.clone();
          caches.open(CACHE).then((c) => c.put(req, copy));
        }}
        return res;
      }})
      .catch(() => caches.match(req))
  );
}});
"#
    )
}
