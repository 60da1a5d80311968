//! The OpenAI completions API as `arca serve` speaks it: the request, read and checked, and the
//! JSON bodies of answers, stream chunks and errors.
//!
//! Accepted fields of `POST /v1/completions`: `prompt` (a string, or an array of one string),
//! `max_tokens` (default 16, as OpenAI's), `temperature` (0..=2, default 1; 0 is greedy),
//! `top_p` (0 < p <= 1, default 1), `stop` (a string or up to 4 non-empty strings), `seed`,
//! `stream`, `model` (must name the served model when given), `n` (only 1). Other fields are
//! ignored, as llama.cpp's server does.

use serde_json::{Value, json};

/// A request's error: the HTTP status and OpenAI's error object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status (4xx for the client's mistakes, 5xx for the server's).
    pub status: u16,
    /// What is wrong, for a person.
    pub message: String,
    /// The request field at fault, if one is.
    pub param: Option<&'static str>,
}

impl ApiError {
    /// A 400 about `param`.
    pub fn bad(param: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            param: Some(param),
        }
    }

    /// Any status, no field.
    pub fn status(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            param: None,
        }
    }

    /// OpenAI's error body.
    pub fn body(&self) -> String {
        let kind = match self.status {
            400..=499 => "invalid_request_error",
            _ => "server_error",
        };
        json!({"error": {"message": self.message, "type": kind, "param": self.param, "code": Value::Null}})
            .to_string()
    }
}

/// A checked completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// The text to continue.
    pub prompt: String,
    /// Tokens to generate at most.
    pub max_tokens: usize,
    /// 0 is greedy.
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Strings that end the completion (not included in it).
    pub stop: Vec<String>,
    /// Sampler seed; `None` picks one.
    pub seed: Option<u64>,
    /// Server-sent events instead of one answer.
    pub stream: bool,
}

/// The most tokens one request may ask for.
pub const MAX_TOKENS_LIMIT: usize = 4096;

impl CompletionRequest {
    /// Reads a request body.
    ///
    /// # Errors
    ///
    /// A 400 naming the field for anything malformed or out of range, a 404 for another
    /// `model` than `served`.
    pub fn parse(body: &[u8], served: &str) -> Result<CompletionRequest, ApiError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::status(400, format!("the body is not JSON: {e}")))?;
        let Some(o) = v.as_object() else {
            return Err(ApiError::status(400, "the body must be a JSON object"));
        };
        if let Some(m) = o.get("model").filter(|m| !m.is_null()) {
            match m.as_str() {
                Some(m) if m == served => {}
                Some(m) => {
                    return Err(ApiError {
                        status: 404,
                        message: format!(
                            "model '{m}' is not served here (this server has '{served}')"
                        ),
                        param: Some("model"),
                    });
                }
                None => return Err(ApiError::bad("model", "'model' must be a string")),
            }
        }
        let prompt = match o.get("prompt") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
                a[0].as_str().unwrap_or_default().to_owned()
            }
            Some(Value::Array(_)) => {
                return Err(ApiError::bad(
                    "prompt",
                    "'prompt' as an array must hold exactly one string (one prompt per request)",
                ));
            }
            Some(_) => return Err(ApiError::bad("prompt", "'prompt' must be a string")),
            None => return Err(ApiError::bad("prompt", "'prompt' is required")),
        };
        let max_tokens = match o.get("max_tokens") {
            None | Some(Value::Null) => 16,
            Some(x) => match x.as_u64() {
                Some(n) if n as usize <= MAX_TOKENS_LIMIT => n as usize,
                _ => {
                    return Err(ApiError::bad(
                        "max_tokens",
                        format!("'max_tokens' must be an integer from 0 to {MAX_TOKENS_LIMIT}"),
                    ));
                }
            },
        };
        let temperature = number(o.get("temperature"), "temperature", 1.0, |t| {
            (0.0..=2.0).contains(&t)
        })?;
        let top_p = number(o.get("top_p"), "top_p", 1.0, |p| p > 0.0 && p <= 1.0)?;
        let stop = match o.get("stop") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) if a.len() <= 4 && a.iter().all(Value::is_string) => a
                .iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect(),
            Some(_) => {
                return Err(ApiError::bad(
                    "stop",
                    "'stop' must be a string or an array of up to 4 strings",
                ));
            }
        };
        if stop.iter().any(String::is_empty) {
            return Err(ApiError::bad("stop", "a stop string must not be empty"));
        }
        let seed =
            match o.get("seed") {
                None | Some(Value::Null) => None,
                Some(x) => Some(x.as_u64().ok_or_else(|| {
                    ApiError::bad("seed", "'seed' must be a non-negative integer")
                })?),
            };
        let stream = match o.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::bad("stream", "'stream' must be true or false")),
        };
        match o.get("n") {
            None | Some(Value::Null) => {}
            Some(n) if n.as_u64() == Some(1) => {}
            Some(_) => return Err(ApiError::bad("n", "only 'n': 1 is supported")),
        }
        Ok(CompletionRequest {
            prompt,
            max_tokens,
            temperature: temperature as f32,
            top_p: top_p as f32,
            stop,
            seed,
            stream,
        })
    }
}

fn number(
    v: Option<&Value>,
    name: &'static str,
    default: f64,
    ok: impl Fn(f64) -> bool,
) -> Result<f64, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(x) => match x.as_f64() {
            Some(f) if ok(f) => Ok(f),
            _ => Err(ApiError::bad(
                name,
                format!("'{name}' is out of range or not a number"),
            )),
        },
    }
}

/// Why a completion ended, in OpenAI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// `max_tokens` reached (or the context).
    Length,
    /// A stop string or the model's end-of-text token.
    Stop,
}

impl Finish {
    fn as_str(self) -> &'static str {
        match self {
            Finish::Length => "length",
            Finish::Stop => "stop",
        }
    }
}

/// Token counts of one completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
}

/// What identifies one completion in its answer and chunks.
#[derive(Debug, Clone)]
pub struct Meta<'a> {
    /// `cmpl-...`.
    pub id: &'a str,
    /// Unix seconds.
    pub created: u64,
    /// The served model.
    pub model: &'a str,
}

/// The whole answer of a non-streaming request.
pub fn completion_body(meta: &Meta, text: &str, finish: Finish, usage: Usage) -> String {
    json!({
        "id": meta.id, "object": "text_completion", "created": meta.created, "model": meta.model,
        "choices": [{"text": text, "index": 0, "logprobs": Value::Null, "finish_reason": finish.as_str()}],
        "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                  "total_tokens": usage.prompt_tokens + usage.completion_tokens},
    })
    .to_string()
}

/// One server-sent event of a streaming request: a piece of text, or the last chunk with the
/// finish reason.
pub fn chunk_event(meta: &Meta, text: &str, finish: Option<Finish>) -> String {
    let body = json!({
        "id": meta.id, "object": "text_completion", "created": meta.created, "model": meta.model,
        "choices": [{"text": text, "index": 0, "logprobs": Value::Null,
                     "finish_reason": finish.map(Finish::as_str)}],
    });
    format!("data: {body}\n\n")
}

/// `GET /v1/models`.
pub fn models_body(model: &str, created: u64) -> String {
    json!({"object": "list", "data": [{"id": model, "object": "model", "created": created, "owned_by": "arca"}]})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CompletionRequest, ApiError> {
        CompletionRequest::parse(s.as_bytes(), "m")
    }

    #[test]
    fn defaults_and_fields() {
        let r = parse(r#"{"prompt": "hi"}"#).unwrap();
        assert_eq!(
            (r.max_tokens, r.temperature, r.top_p, r.stream),
            (16, 1.0, 1.0, false)
        );
        let r = parse(
            r#"{"model": "m", "prompt": ["a"], "max_tokens": 3, "temperature": 0, "top_p": 0.5,
                "stop": ["x", "yz"], "seed": 7, "stream": true, "n": 1, "user": "ignored"}"#,
        )
        .unwrap();
        assert_eq!(r.prompt, "a");
        assert_eq!(r.stop, ["x", "yz"]);
        assert_eq!((r.max_tokens, r.seed, r.stream), (3, Some(7), true));
        assert_eq!(parse(r#"{"prompt": "", "stop": "."}"#).unwrap().stop, ["."]);
    }

    #[test]
    fn bad_requests_name_the_field() {
        for (body, status, param) in [
            ("not json", 400, None),
            ("[1]", 400, None),
            (r#"{"max_tokens": 3}"#, 400, Some("prompt")),
            (r#"{"prompt": 3}"#, 400, Some("prompt")),
            (r#"{"prompt": ["a", "b"]}"#, 400, Some("prompt")),
            (
                r#"{"prompt": "a", "max_tokens": -1}"#,
                400,
                Some("max_tokens"),
            ),
            (
                r#"{"prompt": "a", "max_tokens": 1.5}"#,
                400,
                Some("max_tokens"),
            ),
            (
                r#"{"prompt": "a", "max_tokens": 100000}"#,
                400,
                Some("max_tokens"),
            ),
            (
                r#"{"prompt": "a", "temperature": 3}"#,
                400,
                Some("temperature"),
            ),
            (
                r#"{"prompt": "a", "temperature": "hot"}"#,
                400,
                Some("temperature"),
            ),
            (r#"{"prompt": "a", "top_p": 0}"#, 400, Some("top_p")),
            (
                r#"{"prompt": "a", "stop": ["a","b","c","d","e"]}"#,
                400,
                Some("stop"),
            ),
            (r#"{"prompt": "a", "stop": [""]}"#, 400, Some("stop")),
            (r#"{"prompt": "a", "seed": -2}"#, 400, Some("seed")),
            (r#"{"prompt": "a", "stream": "yes"}"#, 400, Some("stream")),
            (r#"{"prompt": "a", "n": 2}"#, 400, Some("n")),
            (r#"{"prompt": "a", "model": "other"}"#, 404, Some("model")),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!((e.status, e.param), (status, param), "{body}: {e:?}");
            let v: Value = serde_json::from_str(&e.body()).unwrap();
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }

    #[test]
    fn bodies_are_openai_shaped() {
        let meta = Meta {
            id: "cmpl-1",
            created: 5,
            model: "m",
        };
        let v: Value = serde_json::from_str(&completion_body(
            &meta,
            "text",
            Finish::Stop,
            Usage {
                prompt_tokens: 2,
                completion_tokens: 3,
            },
        ))
        .unwrap();
        assert_eq!(v["choices"][0]["text"], "text");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["total_tokens"], 5);
        let e = chunk_event(&meta, "a\"b", None);
        assert!(e.starts_with("data: ") && e.ends_with("\n\n"));
        let v: Value = serde_json::from_str(e.trim_start_matches("data: ").trim()).unwrap();
        assert_eq!(v["choices"][0]["text"], "a\"b");
        assert!(v["choices"][0]["finish_reason"].is_null());
    }
}
