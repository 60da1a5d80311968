//! `arca serve`: an HTTP server with OpenAI's completions API over a target model, and a draft
//! when one is given, each loaded once and shared by every request.
//!
//! - `POST /v1/completions`: `prompt`, `max_tokens`, `temperature`, `top_p`, `stop`, `seed`,
//!   `stream` (server-sent events, one event per decided piece of text, then `data: [DONE]`);
//!   see [`api`] for the accepted values;
//! - `GET /v1/models`: the served model;
//! - `GET /health`.
//!
//! A bad request gets a 4xx with OpenAI's JSON error object naming the field at fault; the
//! server never stops on a request. Each connection has its own thread and decoding state, so
//! requests run concurrently on the machine's cores. With a draft, the first draft length is
//! measured once at start (greedy and sampled), not per request, so every request drafts alike
//! and a request with a `seed` gets the same text each time.
//!
//! Modules: `api` (requests and bodies), `backend` (what a served model does), `http` (the
//! connection loop), `generate` (the backend over arca's generation).

pub mod api;
mod backend;
mod generate;
mod http;

pub use generate::serve;
