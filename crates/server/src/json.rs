//! Request bodies to typed values, with errors that name the field at fault.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// Reads a JSON body within `limit` bytes and `deadline`. It holds no queue place: a client
/// that stalls mid-body costs its own connection only, and is cut off at the deadline.
pub async fn read(
    req: axum::extract::Request,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<Bytes, ApiError> {
    use axum::extract::FromRequest;
    let ct = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::unsupported_media_type(ct));
    }
    match tokio::time::timeout(deadline, Bytes::from_request(req, &())).await {
        Ok(b) => body(b, limit),
        Err(_) => Err(ApiError::body_timeout(deadline.as_secs())),
    }
}

/// Maps a body that could not be read (over `--max-body-mb`, broken connection) to an error.
pub fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit)
        } else {
            ApiError::invalid("", format!("cannot read the request body: {e}"))
        }
    })
}

/// Parses JSON; a type error names the path (`messages[0].role`), a syntax error says where.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "",
            "the request body is empty; send a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid("", format!("malformed JSON in the request body: {inner}"))
                .with_code("invalid_json")
        } else {
            field_error(&path, inner)
        }
    })?;
    Ok(value)
}

/// Deserialises a nested value (e.g. one content part) with its path prefixed.
pub fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner_path = e.path().to_string();
        let path = if inner_path == "." {
            prefix.to_string()
        } else {
            format!("{prefix}.{inner_path}")
        };
        field_error(&path, e.into_inner())
    })
}

fn field_error(path: &str, e: serde_json::Error) -> ApiError {
    let path = if path == "." { "" } else { path };
    // serde appends " at line 1 column 42", which says nothing once the field is named.
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) if !path.is_empty() => msg[..i].to_string(),
        _ => msg,
    };
    ApiError::invalid(path, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct T {
        a: Vec<U>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct U {
        n: u32,
    }

    #[test]
    fn names_the_field() {
        let e = parse::<T>(br#"{"a":[{"n":1},{"n":"x"}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("a[1].n"));
        assert!(
            e.message.starts_with("a[1].n: invalid type"),
            "{}",
            e.message
        );
    }

    #[test]
    fn syntax_errors_say_malformed() {
        let e = parse::<T>(b"{\"a\": [").unwrap_err();
        assert!(e.message.contains("malformed JSON"), "{}", e.message);
    }
}
