//! Renders the tree against a host's env. Env values are strings; lists come from
//! `splitList`. An undefined key is a value that is false in conditions and `eq`/`ne`
//! compare as "", and an error anywhere it would be printed or transformed.

use super::error::{Pos, TemplateError};
use super::funcs;
use super::parser::{Arg, Command, Node, Pipeline};
use crate::env::Env;

/// A value during evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// The whole env (the top-level `.`).
    Env,
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list.
    List(Vec<Value>),
    /// A key the env does not define.
    Missing(String),
}

impl Value {
    /// Truth as `if` sees it.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Env => true,
            Value::Str(s) => !s.is_empty(),
            Value::Int(n) => *n != 0,
            Value::Bool(b) => *b,
            Value::List(l) => !l.is_empty(),
            Value::Missing(_) => false,
        }
    }

    /// The value as text for comparisons (`Missing` is "").
    pub fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::List(l) => format!(
                "[{}]",
                l.iter().map(Value::text).collect::<Vec<_>>().join(" ")
            ),
            Value::Env | Value::Missing(_) => String::new(),
        }
    }
}

pub(super) struct Eval<'a> {
    pub name: &'a str,
    pub env: &'a Env,
    pub out: String,
    vars: Vec<(String, Value)>,
    steps: u64,
}

/// Renders can loop over lists; a bound on work keeps a hostile template from running away.
const MAX_STEPS: u64 = 10_000_000;

impl<'a> Eval<'a> {
    pub fn new(name: &'a str, env: &'a Env) -> Eval<'a> {
        Eval {
            name,
            env,
            out: String::new(),
            vars: Vec::new(),
            steps: 0,
        }
    }

    fn err(&self, pos: Pos, message: impl Into<String>) -> TemplateError {
        TemplateError::at(self.name, pos, message)
    }

    pub fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        let mark = self.vars.len();
        for node in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err(self.err(
                    Pos { line: 1, col: 1 },
                    "template does too much work (over ten million steps)",
                ));
            }
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Print(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        let text = self.printable(&v, p.pos)?;
                        self.out.push_str(&text);
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
                        Value::Missing(_) => Vec::new(),
                        other => {
                            return Err(self.err(
                                pipe.pos,
                                format!("range needs a list, got {:?}; make one with `splitList \",\" .Key`", other.text()),
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

    fn printable(&self, v: &Value, pos: Pos) -> Result<String, TemplateError> {
        match v {
            Value::Missing(key) => Err(self.err(
                pos,
                format!("undefined key {key:?}: define it in spec.env or the host's env, or write {{{{ or .{key} \"default\" }}}}"),
            )),
            Value::Env => Err(self.err(pos, "cannot print `.` (the whole env); print a key such as .HostIP")),
            other => Ok(other.text()),
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
        let v = prev.unwrap_or(Value::Str(String::new()));
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
            return funcs::call(name, &args).map_err(|(p, m)| self.err(p.unwrap_or(*pos), m));
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
            Arg::Field(key) => self.field(key),
            Arg::Var(name) if name.is_empty() => Value::Env,
            Arg::Var(name) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => return Err(self.err(pos, format!("undefined variable ${name}"))),
            },
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(n) => Value::Int(*n),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Func(name) => {
                funcs::call(name, &[]).map_err(|(p, m)| self.err(p.unwrap_or(pos), m))?
            }
            Arg::Sub(p) => self.pipeline(p, dot)?,
        })
    }

    /// `.Key` names the env everywhere, also inside with/range where `.` is a value: env
    /// values are strings and have no fields of their own (the parser refuses `.A.B`).
    fn field(&self, key: &str) -> Value {
        self.env
            .get(key)
            .map(|v| Value::Str(v.clone()))
            .unwrap_or_else(|| Value::Missing(key.to_string()))
    }
}
