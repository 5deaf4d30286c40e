//! `GET /admin`: the dashboard. Counts (accounts by status, organizations, clients,
//! connections) and the chart of sign-ins and sign-in failures per UTC day over the last 30 days
//! (an SVG drawn here, with the same numbers in a table under it).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::chart::{line_chart, Chart, Series};
use super::{base_ctx, notice_of, page, page_ui, Section};
use crate::domain::UserStatus;
use crate::web::error::WebError;
use crate::web::state::AppState;

/// How many days the chart shows (the history keeps 90).
const DAYS: u32 = 30;

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let (s, u) = platform_admin!(state, headers, "/admin");
    let ui = page_ui(&headers, &uri, &u);
    let totals = state.accounts.totals().await?;
    let days = state.accounts.sign_in_days(DAYS).await?;
    let t = |k: &str| ui.t(&state.templates, k).to_owned();

    // "MM-DD" under the axis; the table gives the full date.
    let labels: Vec<String> = days.iter().map(|d| d.day.rfc3339().chars().skip(5).take(5).collect()).collect();
    let succeeded: Vec<i64> = days.iter().map(|d| d.succeeded).collect();
    let failed: Vec<i64> = days.iter().map(|d| d.failed).collect();
    let (ok_name, ko_name) = (t("admin.dashboard.sign_ins"), t("admin.dashboard.failures"));
    let svg = line_chart(&Chart {
        id: "dashboard-chart",
        title: &t("admin.dashboard.chart_title"),
        description: &state.templates.tf(
            ui.lang,
            "admin.dashboard.chart_desc",
            &[
                ("days", &DAYS.to_string()),
                ("ok", &succeeded.iter().sum::<i64>().to_string()),
                ("ko", &failed.iter().sum::<i64>().to_string()),
            ],
        ),
        empty: &t("admin.dashboard.no_data"),
        labels: &labels,
        series: &[
            Series { name: &ok_name, class: "succeeded", color: "#1a7f37", values: &succeeded },
            Series { name: &ko_name, class: "failed", color: "#c62828", values: &failed },
        ],
    });

    let count = |st: UserStatus| totals.users.iter().find(|(x, _)| *x == st).map_or(0, |(_, n)| *n);
    let mut ctx = base_ctx(&state, &ui, &s, Section::Dashboard, notice_of(&state, &ui, q.as_deref()));
    ctx["counts"] = json!({
        "users": totals.users.iter().map(|(_, n)| n).sum::<i64>().to_string(),
        "active": count(UserStatus::Active).to_string(),
        "pending": count(UserStatus::Pending).to_string(),
        "suspended": count(UserStatus::Suspended).to_string(),
        "orgs": totals.orgs.to_string(),
        "clients": totals.clients.to_string(),
        "connections": totals.connections.to_string(),
    });
    ctx["chart_svg"] = json!(svg);
    ctx["days"] = days
        .iter()
        .rev()
        .map(|d| json!({"date": d.day.rfc3339().chars().take(10).collect::<String>(), "succeeded": d.succeeded.to_string(), "failed": d.failed.to_string()}))
        .collect();
    ctx["sign_ins_total"] = json!(succeeded.iter().sum::<i64>().to_string());
    ctx["failures_total"] = json!(failed.iter().sum::<i64>().to_string());
    page(&state, &ui, StatusCode::OK, "admin_dashboard.html", &ctx)
}
