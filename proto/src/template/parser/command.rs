//! Pipelines and commands inside one action: declarations, `|`, arguments, `( … )`.

use super::{Arg, Command, KEYWORDS, Parser, Pipeline};
use crate::template::error::{Pos, TemplateError};
use crate::template::funcs;
use crate::template::lexer::Tok;
use std::sync::Arc;

impl Parser<'_> {
    /// Parses `[$a[, $b] := | $a =] cmd (| cmd)*`.
    pub(super) fn pipeline(
        &mut self,
        toks: &[(Tok, Pos)],
        pos: Pos,
        range: bool,
    ) -> Result<Pipeline, TemplateError> {
        // `$` itself may be declared or assigned too, as in Go.
        let var = |t: &Tok| match t {
            Tok::Var(v, path) if path.is_empty() => Some(v.clone()),
            _ => None,
        };
        let (decl, assign, rest) = match toks {
            [
                (a, _),
                (Tok::Comma, _),
                (b, _),
                (Tok::Declare, _),
                rest @ ..,
            ] if range => match (var(a), var(b)) {
                (Some(a), Some(b)) => (vec![a, b], false, rest),
                _ => return Err(self.err(pos, "expected `range $index, $element := …`")),
            },
            [(a, p), (op @ (Tok::Declare | Tok::Assign), _), rest @ ..] => {
                let Some(a) = var(a) else {
                    return Err(self.err(
                        *p,
                        "only a variable such as `$x` can be declared or assigned",
                    ));
                };
                let assign = *op == Tok::Assign;
                if assign && !a.is_empty() && !self.vars.contains(&a) {
                    return Err(self.err(
                        *p,
                        format!("${a} is assigned before it is declared; write `${a} := …` first"),
                    ));
                }
                (vec![a], assign, rest)
            }
            _ => (Vec::new(), false, toks),
        };
        let Some((_, first)) = rest.first() else {
            return Err(self.err(pos, "missing value in action"));
        };
        let mut cmds = Vec::new();
        let mut k = 0;
        while k < rest.len() {
            let (cmd, used) = self.command(&rest[k..])?;
            cmds.push(cmd);
            k += used;
            if let Some((t, p)) = rest.get(k) {
                if *t != Tok::Pipe {
                    return Err(self.err(*p, "expected `|` or the end of the action"));
                }
                k += 1;
                if k == rest.len() {
                    return Err(self.err(*p, "missing command after `|`"));
                }
            }
        }
        // A literal or `.` after `|` could never receive the value: Go refuses it when parsing.
        for (k, cmd) in cmds.iter().enumerate().skip(1) {
            if let Some((
                Arg::Str(_) | Arg::Int(_) | Arg::Float(_) | Arg::Bool(_) | Arg::Dot | Arg::Nil,
                p,
            )) = cmd.args.first()
            {
                return Err(self.err(
                    *p,
                    format!("non executable command in pipeline stage {}: only a function can receive a piped value", k + 1),
                ));
            }
        }
        // Declared after the value is parsed: `$x := $x` reads the outer `$x`, as in Go.
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipeline {
            decl,
            assign,
            cmds,
            pos: *first,
        })
    }

    /// One command: arguments up to `|`, an unmatched `)` or the end. Returns the tokens used.
    fn command(&mut self, toks: &[(Tok, Pos)]) -> Result<(Command, usize), TemplateError> {
        let mut args = Vec::new();
        let mut k = 0;
        while let Some((t, p)) = toks.get(k) {
            let p = *p;
            let arg = match t {
                Tok::Pipe | Tok::Close => break,
                Tok::Dot => Arg::Dot,
                Tok::Field(path) => self.field(path, p)?,
                Tok::Var(v, path) if v.is_empty() && !path.is_empty() => self.field(path, p)?,
                Tok::Var(v, path) => {
                    if !v.is_empty() && !self.vars.contains(v) {
                        return Err(self.err(
                            p,
                            format!("undefined variable ${v}; declare it first with `${v} := …`"),
                        ));
                    }
                    if path.is_empty() {
                        Arg::Var(v.clone())
                    } else {
                        Arg::VarField(v.clone(), path.clone())
                    }
                }
                Tok::Str(s) => Arg::Str(Arc::from(s.as_str())),
                Tok::Int(n) => Arg::Int(*n),
                Tok::Float(x) => Arg::Float(*x),
                Tok::Ident(w) if w == "nil" && args.is_empty() => {
                    return Err(self.err(p, "nil is not a command"));
                }
                Tok::Ident(w) if w == "nil" => Arg::Nil,
                Tok::Ident(w) if w == "true" || w == "false" => Arg::Bool(w == "true"),
                Tok::Ident(w) if KEYWORDS.contains(&w.as_str()) => {
                    return Err(self.err(p, format!("`{w}` must start its own action")));
                }
                Tok::Ident(w) if funcs::is_known(w) => Arg::Func(w.clone()),
                Tok::Ident(w) => return Err(self.err(p, funcs::unknown(w))),
                Tok::Open => {
                    let close = matching_close(&toks[k..])
                        .ok_or_else(|| self.err(p, "unclosed `(`: add the matching `)`"))?;
                    self.enter(p)?;
                    let inner = self.pipeline(&toks[k + 1..k + close], p, false)?;
                    self.depth -= 1;
                    k += close;
                    match toks.get(k + 1) {
                        Some((Tok::Chain(path), _)) => {
                            k += 1;
                            Arg::Chain(Box::new(inner), path.clone())
                        }
                        _ => Arg::Sub(Box::new(inner)),
                    }
                }
                Tok::Chain(_) => return Err(self.err(p, "a field must follow a value")),
                Tok::Declare | Tok::Assign | Tok::Comma => {
                    return Err(self.err(
                        p,
                        "`:=`, `=` and `,` may only follow the variables at the start of an action",
                    ));
                }
            };
            args.push((arg, p));
            k += 1;
        }
        match toks.first() {
            Some((Tok::Close, p)) if args.is_empty() => Err(self.err(*p, "unexpected `)`")),
            Some((_, p)) if args.is_empty() => Err(self.err(*p, "missing value before `|`")),
            _ => Ok((Command { args }, k)),
        }
    }

    fn field(&self, path: &[String], pos: Pos) -> Result<Arg, TemplateError> {
        match path {
            [key] => Ok(Arg::Field(key.clone())),
            _ => Err(self.err(
                pos,
                format!(
                    ".{}: env values are strings and have no fields; write .{}",
                    path.join("."),
                    path.first().map(String::as_str).unwrap_or_default()
                ),
            )),
        }
    }
}

/// Index of the `)` matching the `(` at index 0.
fn matching_close(toks: &[(Tok, Pos)]) -> Option<usize> {
    let mut depth = 0usize;
    for (k, (t, _)) in toks.iter().enumerate() {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}
