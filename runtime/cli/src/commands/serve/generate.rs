//! The served backend: arca's generation over a target (and a draft), and the command's entry.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use arca_generate::{
    self as generate, CallCost, DraftLength, Drafter, GenError, ModelDrafter, Options,
    PRIOR_ACCEPT, Sampling,
};

use crate::Ui;
use crate::args::ServeArgs;
use crate::commands::serve::api::{ApiError, CompletionRequest, Finish, Usage};
use crate::commands::serve::backend::{Backend, Utf8Pieces};
use crate::commands::serve::http;
use crate::gen_model::GenModel;

/// A target and an optional draft, loaded once.
struct Generator {
    id: String,
    target: GenModel,
    draft: Option<GenModel>,
    draft_p_min: f64,
    /// Draft lengths (greedy, sampled), measured once at start so that every request drafts
    /// alike and a seeded sampled request repeats itself.
    draft_len: (usize, usize),
}

/// The draft lengths the measured costs of `target` and `draft` suggest (as `generate` picks
/// for one run), for greedy and for sampled decoding.
fn measure_draft_len(target: &GenModel, draft: &GenModel, p_min: f64) -> Result<(usize, usize)> {
    let max = Options::default()
        .draft_max
        .min(target.decoder().context_len() / 2)
        .max(1);
    let cost = CallCost::measure(&mut *target.decoder(), max + 1, 3)?;
    let mut drafter = ModelDrafter::new(draft.decoder(), p_min);
    let token = drafter.token_cost();
    let pick = |greedy: bool| {
        let prior = drafter.prior_accept(greedy).unwrap_or(PRIOR_ACCEPT);
        DraftLength::from_costs(&cost, token, prior, max).get()
    };
    Ok((pick(true), pick(false)))
}

impl Backend for Generator {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn complete(
        &self,
        request: &CompletionRequest,
        emit: &mut dyn FnMut(&str) -> std::io::Result<()>,
    ) -> Result<(Finish, Usage), ApiError> {
        let tokenizer = self.target.tokenizer();
        let prompt = tokenizer
            .encode(request.prompt.as_bytes())
            .map_err(|e| ApiError::bad("prompt", e.to_string()))?;
        let seed = request.seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        let options = Options {
            n: request.max_tokens,
            sampling: Sampling::with_temperature(request.temperature, request.top_p),
            seed,
            stop: tokenizer.eos().into_iter().collect(),
            stop_strings: request.stop.iter().map(|s| s.as_bytes().to_vec()).collect(),
            empty_prompt: tokenizer.empty_prompt(),
            draft_start: Some(if request.temperature > 0.0 {
                self.draft_len.1
            } else {
                self.draft_len.0
            }),
            ..Options::default()
        };
        let mut target = self.target.decoder();
        let mut drafter = self
            .draft
            .as_ref()
            .map(|d| ModelDrafter::new(d.decoder(), self.draft_p_min));
        let drafter = drafter.as_mut().map(|d| d as &mut dyn Drafter);
        let mut text = Utf8Pieces::default();
        let mut client_gone = false;
        let result = generate::generate(
            &mut target,
            drafter,
            tokenizer,
            &prompt,
            &options,
            &mut |bytes| {
                let piece = text.push(bytes);
                if piece.is_empty() {
                    return Ok(());
                }
                emit(&piece).inspect_err(|_| client_gone = true)
            },
        );
        let stats = match result {
            Ok(s) => s,
            Err(_) if client_gone => return Err(ApiError::status(499, "the client went away")),
            Err(e @ (GenError::EmptyPrompt { .. } | GenError::Token { .. })) => {
                return Err(ApiError::bad("prompt", e.to_string()));
            }
            Err(e) => return Err(ApiError::status(500, e.to_string())),
        };
        let rest = text.finish();
        if !rest.is_empty() {
            emit(&rest).map_err(|_| ApiError::status(499, "the client went away"))?;
        }
        let finish = if stats.stopped {
            Finish::Stop
        } else {
            Finish::Length
        };
        Ok((
            finish,
            Usage {
                prompt_tokens: prompt.len(),
                completion_tokens: stats.decoded,
            },
        ))
    }
}

/// `arca serve`.
pub fn serve(args: &ServeArgs, ui: &Ui) -> Result<()> {
    if ui.device == arca_runtime::Device::Cuda {
        anyhow::bail!(
            "--device cuda is not supported by serve: its decoders run on the CPU; use --device cpu or auto"
        );
    }
    let target = GenModel::load(&args.model, ui.engine)?;
    let draft = args
        .model_draft
        .as_deref()
        .map(|d| target.load_draft(d, ui.engine))
        .transpose()?;
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    let draft_len = match &draft {
        Some(d) => measure_draft_len(&target, d, args.draft_p_min)?,
        None => (1, 1),
    };
    let generator = Generator {
        id: args
            .alias
            .clone()
            .unwrap_or_else(|| target.name().to_owned()),
        target,
        draft,
        draft_p_min: args.draft_p_min,
        draft_len,
    };
    // The one line a script waits for (stdout, flushed; the port is the real one when --port 0).
    println!(
        "arca serve: listening on http://{addr} (model '{}')",
        generator.id
    );
    if !ui.quiet {
        eprintln!("POST /v1/completions, GET /v1/models; Ctrl-C stops");
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    http::serve(listener, Arc::new(generator))?;
    Ok(())
}
