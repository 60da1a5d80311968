//! `arca serve` against a real HTTP client: the running binary on a free port, OpenAI-shaped
//! answers equal to `arca generate`'s, server-sent events, stop strings, concurrent requests,
//! and bad requests answered with a 4xx JSON error while the server keeps serving.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{ARCA, arca, fails_with, ok};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const TARGET: &str = "models/gen/trained/gen-target.arcm";
const DRAFT: &str = "models/gen/trained/gen-draft-adaspec.arcm";

/// A running server, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(ARCA)
            .arg("serve")
            .args(args)
            .args(["--port", "0"])
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start arca serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Server {
            child,
            base: format!("http://{addr}"),
        }
    }

    fn post(&self, body: &Value) -> Result<Value, (u16, Value)> {
        match ureq::post(&format!("{}/v1/completions", self.base)).send_json(body.clone()) {
            Ok(r) => Ok(r.into_json().expect("JSON answer")),
            Err(ureq::Error::Status(code, r)) => Err((code, r.into_json().expect("JSON error"))),
            Err(e) => panic!("transport error: {e}"),
        }
    }

    fn text(&self, body: &Value) -> String {
        let v = self.post(body).expect("a completion");
        v["choices"][0]["text"].as_str().expect("text").to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn generate_greedy(prompt: &str, n: usize, extra: &[&str]) -> String {
    let n = n.to_string();
    let mut args = vec![
        "generate",
        "-m",
        TARGET,
        "-p",
        prompt,
        "-n",
        &n,
        "--temp",
        "0",
        "--no-echo",
        "-q",
    ];
    args.extend_from_slice(extra);
    let out = arca(&repo(), &args);
    ok(&out);
    let s = String::from_utf8(out.stdout).expect("UTF-8");
    s.strip_suffix('\n').unwrap_or(&s).to_owned()
}

#[test]
fn completions_match_generate_and_stream() {
    let server = Server::start(&["-m", TARGET, "--model-draft", DRAFT]);
    let models: Value = ureq::get(&format!("{}/v1/models", server.base))
        .call()
        .expect("models")
        .into_json()
        .expect("JSON");
    assert_eq!(models["data"][0]["id"], "gen-target");

    let want = generate_greedy("The old man", 48, &[]);
    let req = json!({"prompt": "The old man", "max_tokens": 48, "temperature": 0});
    let v = server.post(&req).expect("completion");
    assert_eq!(v["choices"][0]["text"], want.as_str());
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 48);
    assert_eq!(v["object"], "text_completion");

    // The same completion as events: pieces that join to the same text, then the finish, then
    // [DONE].
    let mut resp = ureq::post(&format!("{}/v1/completions", server.base))
        .send_json(
            json!({"prompt": "The old man", "max_tokens": 48, "temperature": 0, "stream": true}),
        )
        .expect("stream")
        .into_reader();
    let mut raw = String::new();
    resp.read_to_string(&mut raw).expect("read the stream");
    let events: Vec<&str> = raw
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("data: event"))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("JSON event"))
        .collect();
    let joined: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(joined, want);
    assert!(
        chunks.len() > 2,
        "one event per piece, got {}",
        chunks.len()
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );

    // A stop string ends the text before it, with finish_reason "stop".
    // (The first 3-byte piece, from a third of the text on, that does not occur earlier.)
    let at = (want.len() / 3..want.len() - 3)
        .find(|&i| {
            want.is_char_boundary(i)
                && want.is_char_boundary(i + 3)
                && !want[..i + 2].contains(&want[i..i + 3])
        })
        .expect("a stop string that first occurs inside the text");
    let (cut, stop) = (&want[..at], &want[at..at + 3]);
    let v = server
        .post(&json!({"prompt": "The old man", "max_tokens": 48, "temperature": 0, "stop": [stop]}))
        .expect("completion");
    assert_eq!(v["choices"][0]["text"], cut);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    // Sampling with a seed repeats itself.
    let sampled =
        json!({"prompt": "It was", "max_tokens": 32, "temperature": 0.9, "top_p": 0.95, "seed": 5});
    assert_eq!(server.text(&sampled), server.text(&sampled));
}

#[test]
fn concurrent_requests_each_get_their_own_answer() {
    let server = Server::start(&["-m", TARGET]);
    let prompts = ["The old man", "It was the best", "Call me", "\n"];
    let want: Vec<String> = prompts
        .iter()
        .map(|p| generate_greedy(p, 24, &[]))
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = prompts
            .iter()
            .map(|p| {
                let server = &server;
                s.spawn(move || {
                    server.text(&json!({"prompt": p, "max_tokens": 24, "temperature": 0}))
                })
            })
            .collect();
        for (h, w) in handles.into_iter().zip(&want) {
            assert_eq!(&h.join().expect("request thread"), w);
        }
    });
}

#[test]
fn bad_requests_get_json_errors_and_the_server_stays_up() {
    let server = Server::start(&["-m", TARGET]);
    for (body, status, param) in [
        (json!({"max_tokens": 3}), 400, "prompt"),
        (json!({"prompt": "a", "temperature": 7}), 400, "temperature"),
        (json!({"prompt": "a", "max_tokens": -3}), 400, "max_tokens"),
        (json!({"prompt": "a", "stop": [""]}), 400, "stop"),
        (json!({"prompt": "a", "model": "nope"}), 404, "model"),
    ] {
        let (code, err) = server.post(&body).expect_err("refused");
        assert_eq!(code, status, "{body}");
        assert_eq!(err["error"]["param"], param, "{body}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Not JSON, a wrong method, an unknown route, garbage on the socket.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let raw = |req: &[u8]| {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.write_all(req).expect("send");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let body = "{not json";
    let answer = raw(format!(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
    assert!(raw(b"DELETE /v1/models HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 405"));
    assert!(raw(b"GET /v2/x HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(raw(b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(raw(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 411"));
    // Still serving.
    let v = server
        .post(&json!({"prompt": "ok", "max_tokens": 4, "temperature": 0}))
        .expect("completion after the bad ones");
    assert_eq!(v["usage"]["completion_tokens"], 4);
}

#[test]
fn unusable_models_are_refused_before_listening() {
    let repo = repo();
    fails_with(
        &arca(&repo, &["serve", "-m", "no-such-model.arcm", "--port", "0"]),
        "cannot load model 'no-such-model.arcm'",
    );
    fails_with(
        &arca(
            &repo,
            &["serve", "-m", TARGET, "--device", "cuda", "--port", "0"],
        ),
        "--device cuda is not supported by serve",
    );
    // A draft that does not spell the target's tokens.
    fails_with(
        &arca(
            &repo,
            &[
                "serve",
                "-m",
                TARGET,
                "--model-draft",
                "models/arith/trained/arith-add-padrev-draft.arcm",
                "--port",
                "0",
            ],
        ),
        "draft",
    );
}
