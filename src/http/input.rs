//! Parsing request input at the edge: JSON bodies, path and query values, text fields,
//! times.
//! Every failure is a 400 (413 for size) with a sentence that says what to fix.
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};
use permetrix_actors::domain::{Seats, text_field};
use permetrix_storage::Timestamp;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// Largest JSON body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Parses a JSON body from raw bytes (for handlers that also need the bytes).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| json_error(&e))
}

fn json_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Eof if e.line() == 1 && e.column() == 0 => {
            return ApiError::BadRequest {
                code: "invalid_json",
                detail: "the request body is empty; send a JSON object".into(),
            };
        }
        Category::Syntax | Category::Eof | Category::Io => "is not valid JSON",
        Category::Data => "does not match the expected fields",
    };
    ApiError::BadRequest {
        code: "invalid_json",
        detail: format!("the request body {what}: {e}"),
    }
}

/// `web::Json` configured to answer with our errors (and to accept clients that send
/// no `Content-Type`, as some existing ones do).
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY)
        .content_type_required(false)
        .error_handler(|err, _req: &HttpRequest| {
            match err {
                JsonPayloadError::Overflow { limit }
                | JsonPayloadError::OverflowKnownLength { limit, .. } => {
                    ApiError::TooLarge { limit }
                }
                JsonPayloadError::Deserialize(e) => json_error(&e),
                JsonPayloadError::Payload(p) => crate::http::limits::body_timeout(&p)
                    .unwrap_or_else(|| ApiError::BadRequest {
                        code: "invalid_json",
                        detail: format!("the request body could not be read: {p}"),
                    }),
                other => ApiError::BadRequest {
                    code: "invalid_json",
                    detail: format!("the request body could not be read: {other}"),
                },
            }
            .into()
        })
}

/// Raw body limit (413 beyond it).
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(MAX_BODY)
}

/// Path parameters answer 404 when they do not parse.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _| {
        ApiError::not_found(format!("the path is not valid: {err}")).into()
    })
}

/// Query strings answer 400 when they do not parse.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _| {
        ApiError::invalid(format!("the query string is not valid: {err}")).into()
    })
}

/// A required text field: trimmed of nothing, non-empty, at most `max` characters, no
/// control characters (the rule is the domain's [`text_field`]).
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    Ok(text_field(field, value, max)?)
}

/// An optional text field (see [`text`]); empty counts as absent.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    optional(value, |v| text(field, v, max))
}

/// An optional seat count (see [`Seats::parse`]).
pub fn optional_seats(field: &str, v: Option<i64>) -> Result<Option<Seats>, ApiError> {
    Ok(v.map(|n| Seats::parse(field, n)).transpose()?)
}

/// Parses an optional field with `parse`; absent and empty count as absent.
pub fn optional<T>(
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    value.filter(|v| !v.is_empty()).map(parse).transpose()
}

/// Parses an RFC 3339 time (or a date, meaning midnight UTC).
pub fn parse_time(field: &str, v: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    let Some(v) = v.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let parsed = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .or_else(|_| {
            time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc())
        })
        .map_err(|_| {
            ApiError::invalid(format!(
                "{field} '{v}' is not a date; use RFC 3339 (2026-12-31T00:00:00Z) or YYYY-MM-DD"
            ))
        })?;
    let ms = parsed.unix_timestamp_nanos() / 1_000_000;
    Ok(Some(Timestamp::from_millis(
        i64::try_from(ms).unwrap_or(i64::MAX),
    )))
}

/// The raw request body (up to [`MAX_BODY`]), for handlers that parse JSON themselves
/// because they also need the exact bytes (signature v2 covers them).
pub struct RawBody(pub web::Bytes);

impl actix_web::FromRequest for RawBody {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            bytes.await.map(RawBody).map_err(|e| {
                match e.as_error::<actix_web::error::PayloadError>() {
                    Some(actix_web::error::PayloadError::Overflow) => {
                        ApiError::TooLarge { limit: MAX_BODY }
                    }
                    p => p
                        .and_then(crate::http::limits::body_timeout)
                        .unwrap_or_else(|| ApiError::BadRequest {
                            code: "invalid_body",
                            detail: format!("the request body could not be read: {e}"),
                        }),
                }
            })
        })
    }
}

/// Deserializes a field that distinguishes absent from `null`: use on an
/// `Option<Option<T>>` with `#[serde(default, deserialize_with = "nullable")]`; absent
/// gives `None`, `null` gives `Some(None)`, a value `Some(Some(v))`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
