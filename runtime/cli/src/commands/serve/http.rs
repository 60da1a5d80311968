//! The HTTP/1.1 side of `arca serve`: one thread per connection, one request per connection
//! (`Connection: close`), request heads parsed by `httparse`, bodies by `Content-Length`, and
//! streaming answers as server-sent events written and flushed event by event (the reason this
//! is not a general-purpose server crate: the small synchronous ones buffer a streamed body).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::commands::serve::api::{
    ApiError, CompletionRequest, Meta, chunk_event, completion_body, models_body,
};
use crate::commands::serve::backend::Backend;

/// Largest request head and body.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1 << 20;
/// A client that sends nothing for this long is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `backend` on `listener` until the process ends.
pub fn serve(listener: TcpListener, backend: Arc<dyn Backend>) -> std::io::Result<()> {
    let started = unix_now();
    let ids = Arc::new(AtomicU64::new(0));
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let backend = Arc::clone(&backend);
        let ids = Arc::clone(&ids);
        std::thread::spawn(move || {
            // A connection's failure (a client gone, a malformed request) is that connection's.
            let _ = handle(stream, backend.as_ref(), started, &ids);
        });
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Head {
    method: String,
    path: String,
    content_length: Option<usize>,
    chunked: bool,
}

/// Reads the request head (up to the blank line).
fn read_head(reader: &mut BufReader<TcpStream>) -> Result<Head, ApiError> {
    let mut raw = Vec::new();
    loop {
        let n = reader
            .read_until(b'\n', &mut raw)
            .map_err(|e| ApiError::status(400, format!("cannot read the request: {e}")))?;
        if n == 0 {
            return Err(ApiError::status(
                400,
                "the connection closed before a request",
            ));
        }
        if raw.len() > MAX_HEAD {
            return Err(ApiError::status(431, "the request head is too large"));
        }
        if raw.ends_with(b"\r\n\r\n") || raw.ends_with(b"\n\n") {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(ApiError::status(400, "incomplete request head"));
        }
        Err(e) => return Err(ApiError::status(400, format!("malformed request: {e}"))),
    }
    let mut head = Head {
        method: req.method.unwrap_or_default().to_owned(),
        path: req.path.unwrap_or_default().to_owned(),
        content_length: None,
        chunked: false,
    };
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| ApiError::status(400, "Content-Length is not a number"))?;
            head.content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = true;
        }
    }
    Ok(head)
}

fn handle(
    stream: TcpStream,
    backend: &dyn Backend,
    started: u64,
    ids: &AtomicU64,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let head = match read_head(&mut reader) {
        Ok(h) => h,
        Err(e) => return respond_error(&mut writer, &e),
    };
    let path = head.path.split('?').next().unwrap_or_default();
    match (head.method.as_str(), path) {
        ("GET", "/v1/models") => respond(
            &mut writer,
            200,
            "application/json",
            &models_body(backend.model_id(), started),
        ),
        ("GET", "/health") => respond(&mut writer, 200, "application/json", r#"{"status":"ok"}"#),
        ("POST", "/v1/completions") => {
            let body = match read_body(&mut reader, &head) {
                Ok(b) => b,
                Err(e) => return respond_error(&mut writer, &e),
            };
            let request = match CompletionRequest::parse(&body, backend.model_id()) {
                Ok(r) => r,
                Err(e) => return respond_error(&mut writer, &e),
            };
            let id = format!("cmpl-{}-{}", started, ids.fetch_add(1, Ordering::Relaxed));
            let meta = Meta {
                id: &id,
                created: unix_now(),
                model: backend.model_id(),
            };
            if request.stream {
                stream_completion(&mut writer, backend, &request, &meta)
            } else {
                let mut text = String::new();
                match backend.complete(&request, &mut |piece| {
                    text.push_str(piece);
                    Ok(())
                }) {
                    Ok((finish, usage)) => respond(
                        &mut writer,
                        200,
                        "application/json",
                        &completion_body(&meta, &text, finish, usage),
                    ),
                    Err(e) => respond_error(&mut writer, &e),
                }
            }
        }
        (_, "/v1/models" | "/health" | "/v1/completions") => respond_error(
            &mut writer,
            &ApiError::status(405, format!("{} is not allowed on {path}", head.method)),
        ),
        _ => respond_error(
            &mut writer,
            &ApiError::status(
                404,
                format!(
                    "no route {path} (this server has GET /v1/models and POST /v1/completions)"
                ),
            ),
        ),
    }
}

fn read_body(reader: &mut BufReader<TcpStream>, head: &Head) -> Result<Vec<u8>, ApiError> {
    if head.chunked {
        return Err(ApiError::status(411, "send the body with a Content-Length"));
    }
    let len = head
        .content_length
        .ok_or_else(|| ApiError::status(411, "a POST needs a Content-Length"))?;
    if len > MAX_BODY {
        return Err(ApiError::status(
            413,
            format!("the body is over {MAX_BODY} bytes"),
        ));
    }
    let mut body = vec![0; len];
    reader
        .read_exact(&mut body)
        .map_err(|e| ApiError::status(400, format!("the body ended early: {e}")))?;
    Ok(body)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Error",
    }
}

fn respond(w: &mut TcpStream, status: u16, kind: &str, body: &str) -> std::io::Result<()> {
    write!(
        w,
        "HTTP/1.1 {status} {}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )?;
    w.flush()
}

fn respond_error(w: &mut TcpStream, e: &ApiError) -> std::io::Result<()> {
    respond(w, e.status, "application/json", &e.body())
}

/// Server-sent events, each written as one HTTP chunk and flushed, so a client sees every
/// piece of text when the model decides it.
fn stream_completion(
    w: &mut TcpStream,
    backend: &dyn Backend,
    request: &CompletionRequest,
    meta: &Meta,
) -> std::io::Result<()> {
    write!(
        w,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    w.flush()?;
    let result = {
        let mut emit = |piece: &str| send_chunk(w, &chunk_event(meta, piece, None));
        backend.complete(request, &mut emit)
    };
    match result {
        Ok((finish, _usage)) => send_chunk(w, &chunk_event(meta, "", Some(finish)))?,
        // The status line is gone: the error travels as an event.
        Err(e) => send_chunk(w, &format!("data: {}\n\n", e.body()))?,
    }
    send_chunk(w, "data: [DONE]\n\n")?;
    write!(w, "0\r\n\r\n")?;
    w.flush()
}

/// One HTTP chunk, flushed.
fn send_chunk(w: &mut TcpStream, event: &str) -> std::io::Result<()> {
    write!(w, "{:x}\r\n{event}\r\n", event.len())?;
    w.flush()
}
