//! sealer's Go-template forms, rendered by a small dedicated engine (SPEC §4).
//!
//! Why not tera: it cannot parse `{{ .Key }}`, and translating Go's forms (`or`, `eq` with
//! several operands, `with`, `-}}` trims) onto it would leave two languages half-matching.
//! Why not gtmpl: it hangs on an unclosed action. This engine is small, never loops on any
//! input, and knows the one rule sealer's templates need that Go's does not have: printing
//! an undefined key is an error with `file:line:col`, while inside `if`, `with`, `or`,
//! `and`, `not` (and `eq`/`ne`, which compare it as "") an undefined key is simply false.
//!
//! Supported: all of Go's `text/template` but `call` (refused with a message: the env holds
//! no functions), rendering byte for byte as Go 1.19 does — text; `{{ .Key }}`, `{{ . }}`,
//! `$`, `$x := …`, `$x = …`, `$x.Key`, `(…).Key`; string (`"…"` with Go's escapes,
//! `` `…` ``), character (`'a'`), number (`0x1F`, `0o17`, `1_000`, `1.5`, `1e3`, `0x1p-2`)
//! and boolean literals, `nil` as an argument; pipelines; `( … )`; `if`/`else if`/`else`, `with`/`else`,
//! `range` (over lists, with `$i, $e :=`, `else`, `break`, `continue`; over `.`, in key
//! order), `define`/`template`/`block`, `{{-`/`-}}`, `{{/* comments */}}`; Go's builtins
//! `and or not eq ne lt le gt ge len index slice print printf println html js urlquery`
//! with Go's rules (short-circuit `and`/`or`, comparisons by basic kind, `fmt`'s verbs,
//! flags, widths, precisions and `%!d(string=…)` forms) and ours: `default`, `b64enc`,
//! `b64dec` and sealer's string helpers (`funcs::NAMES`). `index . "etcd-dir"` reads keys
//! that are not Go identifiers.
//!
//! Where this differs from Go, it refuses with a message what Go would render (one
//! approximation aside, at the end of this paragraph): an
//! undefined key is an error when printed (Go: `<no value>`), also through `index` (Go:
//! ""); `.Key` reads the env also where `.` is a string (Go: an error); a template called
//! without data may not print `.`; a string is never cut inside a UTF-8 character, and no
//! escape makes a string that is not UTF-8; `printf` refuses `%#x` of a float and `%p` of
//! a list or the env (an address); imaginary literals (`1i`) are refused; templates may call
//! each other 200 levels deep at most (Go: 100,000); a number literal too large for an int is
//! refused when parsing (Go: when run). `%q` and `js` escape what Go's `unicode.IsPrint`
//! rejects, approximated outside ASCII (see `quote::is_print`).
//!
//! Checked against Go: `proto/tests/templates/go/` holds hand-written cases and a corpus of
//! generated templates with Go 1.19's outputs; `scripts/template-goldens.sh` regenerates them.
//!
//! A render is bounded (see `limits`): at most [`MAX_TEXT`] of output and of any one
//! string it builds, [`MAX_BUILT`] built in all, [`MAX_STEPS`] steps (reading long
//! strings costs steps too). Sizes are computed before text is built, so a template that
//! squares a string or repeats a long text in a range fails with `file:line:col` instead of
//! taking the host's memory.

mod builtins;
mod compare;
mod error;
mod escape;
mod eval;
mod float;
mod funcs;
mod lexer;
mod limits;
mod literal;
mod parser;
mod printf;
mod quote;
mod value;
mod verbs;

use crate::env::Env;

pub use error::TemplateError;
pub use limits::{MAX_BUILT, MAX_STEPS, MAX_TEXT};

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    nodes: Vec<parser::Node>,
    /// The templates `define` and `block` name.
    defs: std::sync::Arc<parser::Defs>,
}

impl Template {
    /// Parses `src`; `name` is used in error messages.
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        let pieces = lexer::lex(name, src)?;
        let (nodes, defs) = parser::parse(name, pieces)?;
        Ok(Template {
            name: name.to_string(),
            nodes,
            defs: std::sync::Arc::new(defs),
        })
    }

    /// Renders against a host's env.
    pub fn render(&self, env: &Env) -> Result<String, TemplateError> {
        let mut e = eval::Eval::new(&self.name, env, &self.defs);
        e.nodes(&self.nodes, &value::Value::Env)?;
        Ok(e.out)
    }
}

/// Parses and renders in one go.
pub fn render(name: &str, src: &str, env: &Env) -> Result<String, TemplateError> {
    Template::parse(name, src)?.render(env)
}
