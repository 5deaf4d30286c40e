//! The layers that sit on routes (not on the edge, `web::edge`), written as plain tower
//! services: no boxed future, no clone of the route below per request.
//!
//! axum clones a route's service for each request. With `middleware::from_fn` on every route
//! that clone went through a boxed `Next` and a boxed future, and tower-http's `CorsLayer`
//! cloned its whole configuration (header lists) and built a `Vary` header for every answer:
//! together about a third of the instructions of a JWKS request (callgrind, docs/PERFORMANCE.md).
//! Both services here are a field or two and a future that touches the response once.
//!
//! - [`RememberRoute`] (every route): hands the matched route template to `metrics::track`,
//!   which wraps the whole router and so runs before the routing (`metrics::remember`).
//! - [`PublicCors`] (the OIDC back-channel endpoints): any origin may call them, without
//!   credentials.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready};
use tower::{Layer, Service};

pin_project_lite::pin_project! {
    /// A route's future, then one change to its response.
    pub struct Finish<F, A> {
        #[pin]
        fut: F,
        then: Option<A>,
    }
}

/// What [`Finish`] does to the response, once.
pub trait Then {
    fn then(self, res: &mut Response);
}

impl<F, A, E> Future for Finish<F, A>
where
    F: Future<Output = Result<Response, E>>,
    A: Then,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut out = ready!(this.fut.poll(cx));
        if let (Ok(res), Some(then)) = (&mut out, this.then.take()) {
            then.then(res);
        }
        Poll::Ready(out)
    }
}

/// On every route (`Router::route_layer`): the matched route's template into the response.
#[derive(Clone, Copy, Debug, Default)]
pub struct RememberRoute;

impl<S> Layer<S> for RememberRoute {
    type Service = Remember<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Remember(inner)
    }
}

#[derive(Clone, Debug)]
pub struct Remember<S>(S);

impl<S> Service<Request> for Remember<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let Some(route) = req.extensions().get::<MatchedPath>() {
            super::metrics::remember(route);
        }
        self.0.call(req)
    }
}

/// CORS for endpoints that browser-based clients (SPAs) call cross-origin and that never use
/// cookies (clients authenticate by secret, assertion, PKCE or bearer token): any origin may call
/// them without credentials, as there is no ambient authority to abuse.
///
/// Every answer carries `Access-Control-Allow-Origin: *` (the same for every origin, so no
/// `Vary`); a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here, 200,
/// with the methods (GET, POST) and request headers (Authorization, Content-Type, Accept) allowed,
/// cached for an hour. No `Access-Control-Allow-Credentials`: browsers send no cookies.
#[derive(Clone, Copy, Debug, Default)]
pub struct PublicCors;

impl<S> Layer<S> for PublicCors {
    type Service = Cors<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Cors(inner)
    }
}

#[derive(Clone, Debug)]
pub struct Cors<S>(S);

const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");

pub struct AnyOrigin;

impl Then for AnyOrigin {
    fn then(self, res: &mut Response) {
        res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    }
}

fn preflight() -> Response {
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, const { HeaderValue::from_static("GET,POST") });
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        const { HeaderValue::from_static("authorization,content-type,accept") },
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, const { HeaderValue::from_static("3600") });
    res
}

impl<S> Service<Request> for Cors<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, Finish<S::Future, AnyOrigin>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return Either::Left(futures_util::future::ready(Ok(preflight())));
        }
        Either::Right(Finish { fut: self.0.call(req), then: Some(AnyOrigin) })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        Router::new()
            .route("/public/{id}", get(|| async { "ok" }))
            .layer(PublicCors)
            .route("/page", get(|| async { "page" }))
            .route_layer(RememberRoute)
    }

    async fn send(method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        app().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn the_matched_template_is_remembered_for_the_metrics() {
        let (res, route) = crate::web::metrics::with_route(send(Method::GET, "/public/42", &[])).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(route.as_ref().map(MatchedPath::as_str), Some("/public/{id}"));
        let (res, route) = crate::web::metrics::with_route(send(Method::GET, "/nowhere", &[])).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(route.is_none());
        // Outside `with_route` (no slot in the task) the route is not remembered, and no harm.
        assert_eq!(send(Method::GET, "/page", &[]).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn public_routes_answer_any_origin_and_preflights() {
        let res = send(Method::GET, "/public/1", &[("origin", "https://spa.example")]).await;
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        assert!(res.headers().get("vary").is_none());
        let res = send(
            Method::OPTIONS,
            "/public/1",
            &[("origin", "https://spa.example"), ("access-control-request-method", "POST")],
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["access-control-allow-methods"], "GET,POST");
        assert_eq!(res.headers()["access-control-allow-headers"], "authorization,content-type,accept");
        assert_eq!(res.headers()["access-control-max-age"], "3600");
        assert!(res.headers().get("access-control-allow-credentials").is_none());
        // An OPTIONS that is not a preflight goes to the route (no OPTIONS handler: 405).
        let res = send(Method::OPTIONS, "/public/1", &[]).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        // Other routes are not opened.
        let res = send(Method::GET, "/page", &[("origin", "https://spa.example")]).await;
        assert!(res.headers().get("access-control-allow-origin").is_none());
    }
}
