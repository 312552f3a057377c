//! Renders the tree against a host's env. Env values are strings; lists come from
//! `splitList` and `slice`. An undefined key is a value that is false in conditions and
//! `eq`/`ne` compare as "", and an error anywhere it would be printed or transformed.

use super::error::{Pos, TemplateError};
use super::funcs::{self, Ctx};
use super::limits::{self, MAX_TEXT, Meter};
use super::parser::{Arg, Command, Defs, Node, Pipeline};
use super::printf;
use super::value::Value;
use super::verbs::FmtError;
use crate::env::Env;
use std::collections::HashMap;
use std::sync::Arc;

/// How deep blocks may nest at run time, across template calls: each template is bounded
/// by the parser, but a template may call itself.
const MAX_RUN_DEPTH: usize = 200;

/// The key an undefined dot is named by: the dot of a template called without data.
const NO_DATA: &str = "<no data>";

/// How a run of nodes ended.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Flow {
    Normal,
    Break,
    Continue,
}

pub(super) struct Eval<'a> {
    pub name: &'a str,
    pub env: &'a Env,
    pub out: String,
    defs: &'a Defs,
    vars: Vec<(String, Value)>,
    /// Env values already turned into shared strings, so a key read in a loop is copied once.
    fields: HashMap<String, Arc<str>>,
    /// Steps and text built so far (see [`limits`]).
    meter: Meter,
    depth: usize,
}

impl<'a> Eval<'a> {
    pub(super) fn new(name: &'a str, env: &'a Env, defs: &'a Defs) -> Eval<'a> {
        Eval {
            name,
            env,
            out: String::new(),
            defs,
            // `$` is the data: the env.
            vars: vec![(String::new(), Value::Env)],
            fields: HashMap::new(),
            meter: Meter::default(),
            depth: 0,
        }
    }

    fn err(&self, pos: Pos, message: impl Into<String>) -> TemplateError {
        TemplateError::at(self.name, pos, message)
    }

    fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            meter: &mut self.meter,
            env: self.env,
            fields: &mut self.fields,
        }
    }

    pub(super) fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_RUN_DEPTH {
            let pos = first_pos(nodes);
            return Err(self.err(pos, format!("blocks and template calls nest deeper than {MAX_RUN_DEPTH} levels; does a template call itself without end?")));
        }
        let mark = self.vars.len();
        let mut flow = Flow::Normal;
        for node in nodes {
            flow = self.node(node, dot)?;
            if flow != Flow::Normal {
                break;
            }
        }
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(flow)
    }

    fn node(&mut self, node: &Node, dot: &Value) -> Result<Flow, TemplateError> {
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
                for (cond, body) in branches {
                    if self.pipeline(cond, dot)?.truthy() {
                        return self.nodes(body, dot);
                    }
                }
                return self.nodes(otherwise, dot);
            }
            Node::Block {
                range: false,
                pipe,
                body,
                otherwise,
            } => {
                let v = self.pipeline(pipe, dot)?;
                return if v.truthy() {
                    self.nodes(body, &v)
                } else {
                    self.nodes(otherwise, dot)
                };
            }
            Node::Block {
                range: true,
                pipe,
                body,
                otherwise,
            } => return self.range(pipe, body, otherwise, dot),
            Node::Call { name, pipe, pos } => {
                let Some(body) = self.defs.get(name) else {
                    return Err(self.err(*pos, format!("no template named {name:?} is defined; define it with {{{{ define {name:?} }}}}…{{{{ end }}}}")));
                };
                if self.depth >= MAX_RUN_DEPTH {
                    return Err(self.err(*pos, format!("templates call each other deeper than {MAX_RUN_DEPTH} levels; does {name:?} call itself without end?")));
                }
                let data = match pipe {
                    Some(p) => self.pipeline(p, dot)?,
                    None => Value::Missing(NO_DATA.to_string()),
                };
                // A called template sees only its own `$`: its data.
                let vars = std::mem::replace(&mut self.vars, vec![(String::new(), data.clone())]);
                let r = self.nodes(body, &data);
                self.vars = vars;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        pipe: &Pipeline,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value,
    ) -> Result<Flow, TemplateError> {
        let v = self.range_value(pipe, dot)?;
        // (key or index, element)
        let items: Vec<(Value, Value)> = match v {
            Value::List(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (Value::Int(i as i64), item.clone()))
                .collect(),
            // A map ranges in key order, as Go's does.
            Value::Env => {
                let mut items = Vec::with_capacity(self.env.len());
                for key in self.env.keys() {
                    let value = self.ctx().lookup(key).map_err(|m| self.err(pipe.pos, m))?;
                    items.push((Value::Str(Arc::from(key.as_str())), value));
                }
                items
            }
            Value::Missing(_) | Value::Nil => Vec::new(),
            other => {
                return Err(self.err(
                    pipe.pos,
                    format!(
                        "range can't iterate over {}; make a list with `splitList \",\" .Key`",
                        other.preview()
                    ),
                ));
            }
        };
        if items.is_empty() {
            return self.nodes(otherwise, dot);
        }
        for (key, item) in items {
            let mark = self.vars.len();
            match pipe.decl.as_slice() {
                [v] => self.vars.push((v.clone(), item.clone())),
                [k, v] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), item.clone()));
                }
                _ => {}
            }
            let flow = self.nodes(body, &item);
            self.vars.truncate(mark);
            if flow? == Flow::Break {
                break;
            }
        }
        Ok(Flow::Normal)
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

    /// Prints a value as Go's `{{ }}` does; a string's size is checked before it is copied,
    /// and other values are formatted within the limit.
    fn print(&mut self, v: &Value, pos: Pos) -> Result<(), TemplateError> {
        match v {
            Value::Missing(key) if key == NO_DATA => Err(self.err(
                pos,
                "this template was called without data, so `.` is undefined; pass it some: {{ template \"name\" . }}",
            )),
            Value::Missing(key) => {
                // A key that is no identifier (`etcd-dir`) is only reached through index.
                let read = if crate::env::is_valid_key(key) {
                    format!(".{key}")
                } else {
                    format!("(index . {key:?})")
                };
                Err(self.err(
                    pos,
                    format!("undefined key {key:?}: define it in spec.env or the host's env, or write {{{{ or {read} \"default\" }}}}"),
                ))
            }
            Value::Str(s) => self.emit(&s.clone(), pos),
            // What `and`/`or` return when `nil` decides, printed as Go prints no value.
            Value::Nil => self.emit("<no value>", pos),
            other => {
                let text = printf::sprint(self.env, std::slice::from_ref(other)).map_err(|e| {
                    let size = match e {
                        FmtError::Full => MAX_TEXT + 1,
                        FmtError::Unsupported(_) => 0,
                    };
                    self.err(pos, limits::output_too_big(self.out.len().saturating_add(size)))
                })?;
                self.emit(&text, pos)
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
        // The parser never builds a command without arguments.
        let (head, pos) = &cmd.args[0];
        if let Arg::Func(name) = head {
            if name == "and" || name == "or" {
                return self.and_or(name, cmd, dot, piped);
            }
            let mut args = Vec::with_capacity(cmd.args.len());
            for (a, p) in &cmd.args[1..] {
                args.push((self.arg(a, *p, dot)?, *p));
            }
            if let Some(v) = piped {
                args.push((v, *pos));
            }
            return funcs::call(name, &args, &mut self.ctx())
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

    /// `and`/`or`: operands are evaluated in order up to the one that decides, which is the
    /// result (a piped value, already evaluated, comes last).
    fn and_or(
        &mut self,
        name: &str,
        cmd: &Command,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        // The function's name is the first argument (see `command`).
        let (_, pos) = &cmd.args[0];
        if cmd.args.len() == 1 && piped.is_none() {
            return Err(self.err(
                *pos,
                format!("wrong number of args for {name}: want at least 1 got 0"),
            ));
        }
        let decides = |v: &Value| v.truthy() == (name == "or");
        let mut last = None;
        for (a, p) in &cmd.args[1..] {
            let v = self.arg(a, *p, dot)?;
            if decides(&v) {
                return Ok(v);
            }
            last = Some(v);
        }
        // There was an operand or a piped value (checked above).
        Ok(piped.or(last).unwrap_or(Value::Bool(false)))
    }

    fn arg(&mut self, a: &Arg, pos: Pos, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Field(key) => self.field(key, pos)?,
            Arg::Var(name) => self.var(name, pos)?,
            Arg::VarField(name, path) => {
                let v = self.var(name, pos)?;
                self.fields_of(v, path, pos)?
            }
            Arg::Chain(p, path) => {
                let v = self.pipeline(p, dot)?;
                self.fields_of(v, path, pos)?
            }
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(n) => Value::Int(*n),
            Arg::Float(x) => Value::Float(*x),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Func(name) if name == "and" || name == "or" => {
                return Err(self.err(
                    pos,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            Arg::Func(name) => funcs::call(name, &[], &mut self.ctx())
                .map_err(|(p, m)| self.err(p.unwrap_or(pos), m))?,
            Arg::Sub(p) => self.pipeline(p, dot)?,
        })
    }

    /// `v.A.B`: only the env has fields.
    fn fields_of(
        &mut self,
        mut v: Value,
        path: &[String],
        pos: Pos,
    ) -> Result<Value, TemplateError> {
        for f in path {
            v = match v {
                Value::Env => self.field(f, pos)?,
                other => {
                    return Err(self.err(
                        pos,
                        format!(
                            "can't evaluate field {f} in type {}: only the env has fields",
                            other.type_name()
                        ),
                    ));
                }
            };
        }
        Ok(v)
    }

    fn var(&self, name: &str, pos: Pos) -> Result<Value, TemplateError> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.err(pos, format!("undefined variable ${name}"))),
        }
    }

    /// `.Key` names the env everywhere, also inside with/range where `.` is a value: env
    /// values are strings and have no fields of their own (the parser refuses `.A.B`).
    fn field(&mut self, key: &str, pos: Pos) -> Result<Value, TemplateError> {
        self.ctx().lookup(key).map_err(|m| self.err(pos, m))
    }
}

/// Where a run of nodes starts, for an error about the run as a whole.
fn first_pos(nodes: &[Node]) -> Pos {
    nodes
        .iter()
        .find_map(|n| match n {
            Node::Text(_, p) | Node::Call { pos: p, .. } => Some(*p),
            Node::Print(p) => Some(p.pos),
            _ => None,
        })
        .unwrap_or(Pos { line: 1, col: 1 })
}
