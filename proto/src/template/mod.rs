//! sealer's Go-template forms, rendered by a small dedicated engine (SPEC §4).
//!
//! Why not tera: it cannot parse `{{ .Key }}`, and translating Go's forms (`or`, `eq` with
//! several operands, `with`, `-}}` trims) onto it would leave two languages half-matching.
//! Why not gtmpl: it hangs on an unclosed action. This engine is small, never loops on any
//! input, and knows the one rule sealer's templates need that Go's does not have: printing
//! an undefined key is an error with `file:line:col`, while inside `if`, `with`, `or`,
//! `and`, `not` (and `eq`/`ne`, which compare it as "") an undefined key is simply false.
//!
//! Supported: text; `{{ .Key }}`, `{{ . }}` inside with/range, `$var` and `$x := …`;
//! string (`"…"`, `` `…` ``), integer and boolean literals; pipelines; `( … )`;
//! `if`/`else if`/`else`/`end`, `with`/`else`, `range` (over `splitList`), `{{-`/`-}}`,
//! `{{/* comments */}}`; the functions listed in `funcs::NAMES`. `define`, `template` and
//! `block` are refused with a message.
//!
//! A render is bounded (see `limits`): at most [`MAX_TEXT`] of output and of any one
//! string it builds, [`MAX_BUILT`] built in all, [`MAX_STEPS`] steps (reading long
//! strings costs steps too). Sizes are computed before text is built, so a template that
//! squares a string or repeats a long text in a range fails with `file:line:col` instead of
//! taking the host's memory.

mod error;
mod eval;
mod funcs;
mod lexer;
mod limits;
mod parser;
mod value;

use crate::env::Env;

pub use error::TemplateError;
pub use limits::{MAX_BUILT, MAX_STEPS, MAX_TEXT};

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    nodes: Vec<parser::Node>,
}

impl Template {
    /// Parses `src`; `name` is used in error messages.
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        let pieces = lexer::lex(name, src)?;
        let nodes = parser::parse(name, pieces)?;
        Ok(Template {
            name: name.to_string(),
            nodes,
        })
    }

    /// Renders against a host's env.
    pub fn render(&self, env: &Env) -> Result<String, TemplateError> {
        let mut e = eval::Eval::new(&self.name, env);
        e.nodes(&self.nodes, &value::Value::Env)?;
        Ok(e.out)
    }
}

/// Parses and renders in one go.
pub fn render(name: &str, src: &str, env: &Env) -> Result<String, TemplateError> {
    Template::parse(name, src)?.render(env)
}
