//! Renders the tree against a host's env. Env values are strings; lists come from
//! `splitList`. An undefined key is a value that is false in conditions and `eq`/`ne`
//! compare as "", and an error anywhere it would be printed or transformed.

use super::error::{Pos, TemplateError};
use super::funcs;
use super::limits::{self, MAX_TEXT, Meter};
use super::parser::{Arg, Command, Node, Pipeline};
use super::value::Value;
use crate::env::Env;
use std::collections::HashMap;
use std::sync::Arc;

pub(super) struct Eval<'a> {
    pub name: &'a str,
    pub env: &'a Env,
    pub out: String,
    vars: Vec<(String, Value)>,
    /// Env values already turned into shared strings, so a key read in a loop is copied once.
    fields: HashMap<String, Arc<str>>,
    /// Steps and text built so far (see [`limits`]).
    meter: Meter,
}

impl<'a> Eval<'a> {
    pub(super) fn new(name: &'a str, env: &'a Env) -> Eval<'a> {
        Eval {
            name,
            env,
            out: String::new(),
            vars: Vec::new(),
            fields: HashMap::new(),
            meter: Meter::default(),
        }
    }

    fn err(&self, pos: Pos, message: impl Into<String>) -> TemplateError {
        TemplateError::at(self.name, pos, message)
    }

    pub(super) fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        let mark = self.vars.len();
        for node in nodes {
            self.meter
                .steps(1)
                .map_err(|m| self.err(Pos { line: 1, col: 1 }, m))?;
            match node {
                Node::Text(t, pos) => self.emit(t, *pos)?,
                Node::Print(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        self.print(&v, p.pos)?;
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut done = false;
                    for (cond, body) in branches {
                        if self.pipeline(cond, dot)?.truthy() {
                            self.nodes(body, dot)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.nodes(otherwise, dot)?;
                    }
                }
                Node::Block {
                    range: false,
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self.pipeline(pipe, dot)?;
                    if v.truthy() {
                        self.nodes(body, &v)?;
                    } else {
                        self.nodes(otherwise, dot)?;
                    }
                }
                Node::Block {
                    range: true,
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self.range_value(pipe, dot)?;
                    let items = match v {
                        Value::List(items) => items,
                        Value::Missing(_) => Arc::from(Vec::new()),
                        other => {
                            return Err(self.err(
                                pipe.pos,
                                format!("range needs a list, got {}; make one with `splitList \",\" .Key`", other.preview()),
                            ));
                        }
                    };
                    if items.is_empty() {
                        self.nodes(otherwise, dot)?;
                    }
                    for (i, item) in items.iter().enumerate() {
                        let mark = self.vars.len();
                        match pipe.decl.as_slice() {
                            [v] => self.vars.push((v.clone(), item.clone())),
                            [k, v] => {
                                self.vars.push((k.clone(), Value::Int(i as i64)));
                                self.vars.push((v.clone(), item.clone()));
                            }
                            _ => {}
                        }
                        self.nodes(body, item)?;
                        self.vars.truncate(mark);
                    }
                }
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    /// Appends `text` to the output, unless that would pass [`MAX_TEXT`]. The output's
    /// buffer grows by doubling but never past the limit, so it never holds more than
    /// [`MAX_TEXT`] bytes of memory either.
    fn emit(&mut self, text: &str, pos: Pos) -> Result<(), TemplateError> {
        let size = self.out.len().saturating_add(text.len());
        if size > MAX_TEXT {
            return Err(self.err(pos, limits::output_too_big(size)));
        }
        if size > self.out.capacity() {
            let target = size.max(self.out.capacity() * 2).min(MAX_TEXT);
            self.out.reserve_exact(target - self.out.len());
        }
        self.out.push_str(text);
        Ok(())
    }

    /// Prints a value: its size is checked before a list's text is built.
    fn print(&mut self, v: &Value, pos: Pos) -> Result<(), TemplateError> {
        match v {
            Value::Missing(key) => Err(self.err(
                pos,
                format!("undefined key {key:?}: define it in spec.env or the host's env, or write {{{{ or .{key} \"default\" }}}}"),
            )),
            Value::Env => Err(self.err(pos, "cannot print `.` (the whole env); print a key such as .HostIP")),
            other => {
                let size = self.out.len().saturating_add(limits::text_len(other));
                if size > MAX_TEXT {
                    return Err(self.err(pos, limits::output_too_big(size)));
                }
                self.emit(&other.text(), pos)
            }
        }
    }

    /// A range's pipeline value; its declared variables are bound per element, not here.
    fn range_value(&mut self, pipe: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let plain = Pipeline {
            decl: Vec::new(),
            assign: false,
            cmds: pipe.cmds.clone(),
            pos: pipe.pos,
        };
        self.pipeline(&plain, dot)
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut prev: Option<Value> = None;
        for cmd in &p.cmds {
            prev = Some(self.command(cmd, dot, prev)?);
        }
        // The parser never builds a pipeline without commands.
        let v = prev.unwrap_or(Value::Str(Arc::from("")));
        if let [name] = p.decl.as_slice() {
            // `$x = …` sets the innermost `$x` (the parser checked it exists); `$x := …`
            // declares a new one that shadows any outer `$x` until its block ends.
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) if p.assign => slot.1 = v.clone(),
                _ => self.vars.push((name.clone(), v.clone())),
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        cmd: &Command,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let (head, pos) = &cmd.args[0];
        if let Arg::Func(name) = head {
            let mut args = Vec::with_capacity(cmd.args.len());
            for (a, p) in &cmd.args[1..] {
                args.push((self.arg(a, *p, dot)?, *p));
            }
            if let Some(v) = piped {
                args.push((v, *pos));
            }
            return funcs::call(name, &args, &mut self.meter)
                .map_err(|(p, m)| self.err(p.unwrap_or(*pos), m));
        }
        if cmd.args.len() > 1 {
            return Err(self.err(
                cmd.args[1].1,
                "a value cannot take arguments; did you mean a function?",
            ));
        }
        if piped.is_some() {
            return Err(self.err(*pos, "only a function can receive a piped value"));
        }
        self.arg(head, *pos, dot)
    }

    fn arg(&mut self, a: &Arg, pos: Pos, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Field(key) => self.field(key, pos)?,
            Arg::Var(name) if name.is_empty() => Value::Env,
            Arg::Var(name) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => return Err(self.err(pos, format!("undefined variable ${name}"))),
            },
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(n) => Value::Int(*n),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Func(name) => funcs::call(name, &[], &mut self.meter)
                .map_err(|(p, m)| self.err(p.unwrap_or(pos), m))?,
            Arg::Sub(p) => self.pipeline(p, dot)?,
        })
    }

    /// `.Key` names the env everywhere, also inside with/range where `.` is a value: env
    /// values are strings and have no fields of their own (the parser refuses `.A.B`).
    fn field(&mut self, key: &str, pos: Pos) -> Result<Value, TemplateError> {
        if let Some(v) = self.fields.get(key) {
            return Ok(Value::Str(v.clone()));
        }
        let Some(v) = self.env.get(key) else {
            return Ok(Value::Missing(key.to_string()));
        };
        self.meter
            .build(&format!("reading .{key}"), v.len())
            .map_err(|m| self.err(pos, m))?;
        let shared: Arc<str> = Arc::from(v.as_str());
        self.fields.insert(key.to_string(), shared.clone());
        Ok(Value::Str(shared))
    }
}
