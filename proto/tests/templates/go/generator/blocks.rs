//! The generator's blocks: text, actions, if/with/range with their else branches,
//! variables, break/continue, named templates; and the corpus file it makes.

use super::{CASES, Gen, Kind, Rng, SEED, TEXTS};
use std::fmt::Write as _;

impl Gen {
    fn open(&mut self) -> &'static str {
        if self.rng.chance(15) { "{{- " } else { "{{ " }
    }

    fn close(&mut self) -> &'static str {
        if self.rng.chance(15) { " -}}" } else { " }}" }
    }

    fn action(&mut self, out: &mut String, kw: &str) {
        let (o, c) = (self.open(), self.close());
        let _ = write!(out, "{o}{kw}{c}");
    }

    /// A run of text and actions.
    fn body(&mut self, out: &mut String, budget: usize) {
        let mark = self.vars.len();
        for _ in 0..budget {
            self.item(out);
        }
        self.vars.truncate(mark);
    }

    fn item(&mut self, out: &mut String) {
        let nested = self.depth < 3;
        match self.rng.below(if nested { 12 } else { 6 }) {
            0 => out.push_str(self.rng.pick(&TEXTS)),
            1..=3 => {
                let (p, _) = self.pipeline();
                let (o, c) = (self.open(), self.close());
                let _ = write!(out, "{o}{p}{c}");
            }
            4 => {
                let (p, kind) = self.pipeline();
                let name = format!("v{}", self.next_var);
                self.next_var += 1;
                let (o, c) = (self.open(), self.close());
                let _ = write!(out, "{o}${name} := {p}{c}");
                self.vars.push((name, kind));
            }
            5 => {
                if let Some((name, _)) = self.vars.last().cloned() {
                    let (p, kind) = self.pipeline();
                    let (o, c) = (self.open(), self.close());
                    let _ = write!(out, "{o}${name} = {p}{c}");
                    if let Some(slot) = self.vars.last_mut() {
                        slot.1 = if slot.1 == kind { kind } else { Kind::Any };
                    }
                } else {
                    let _ = write!(out, "{{{{/* c */}}}}");
                }
            }
            6 | 7 => {
                self.depth += 1;
                let mark = self.vars.len();
                let (mut p, kind) = self.pipeline();
                if self.rng.chance(15) {
                    // A variable declared in the condition is seen by every branch.
                    let name = format!("v{}", self.next_var);
                    self.next_var += 1;
                    p = format!("${name} := {p}");
                    self.vars.push((name, kind));
                }
                self.action(out, &format!("if {p}"));
                {
                    let n = 1 + self.rng.below(3);
                    self.body(out, n)
                };
                if self.rng.chance(30) {
                    let (p, _) = self.pipeline();
                    self.action(out, &format!("else if {p}"));
                    {
                        let n = 1 + self.rng.below(2);
                        self.body(out, n)
                    };
                }
                if self.rng.chance(50) {
                    self.action(out, "else");
                    {
                        let n = 1 + self.rng.below(2);
                        self.body(out, n)
                    };
                }
                self.action(out, "end");
                self.vars.truncate(mark);
                self.depth -= 1;
            }
            8 => {
                self.depth += 1;
                let (p, kind) = self.pipeline();
                self.action(out, &format!("with {p}"));
                let dot = std::mem::replace(&mut self.dot, kind);
                {
                    let n = 1 + self.rng.below(3);
                    self.body(out, n)
                };
                self.dot = dot;
                if self.rng.chance(40) {
                    self.action(out, "else");
                    self.body(out, 1);
                }
                self.action(out, "end");
                self.depth -= 1;
            }
            9 | 10 => self.range(out),
            _ => {
                if self.ranges > 0 && self.rng.chance(60) {
                    let (p, _) = self.pipeline();
                    let kw = self.rng.pick(&["break", "continue"]);
                    self.action(out, &format!("if {p}"));
                    self.action(out, kw);
                    self.action(out, "end");
                } else if let Some((name, env)) = self.defines.last().cloned() {
                    let data = match (env, self.dot) {
                        (true, Kind::Env) => ".".to_string(),
                        (true, _) if self.dollar_env => "$".to_string(),
                        (true, _) => return,
                        (false, _) => self.string_value().0,
                    };
                    self.action(out, &format!("template {name:?} {data}"));
                } else {
                    out.push_str(self.rng.pick(&TEXTS));
                }
            }
        }
    }

    fn range(&mut self, out: &mut String) {
        self.depth += 1;
        let (list, elem) = if self.dollar_env && self.rng.chance(20) {
            ("$".to_string(), Kind::Str)
        } else {
            (self.list_value(), Kind::Str)
        };
        let mark = self.vars.len();
        let decl = match self.rng.below(3) {
            0 => String::new(),
            1 => {
                let e = format!("v{}", self.next_var);
                self.next_var += 1;
                self.vars.push((e.clone(), elem));
                format!("${e} := ")
            }
            _ => {
                let (i, e) = (
                    format!("v{}", self.next_var),
                    format!("v{}", self.next_var + 1),
                );
                self.next_var += 2;
                let key = if list == "$" { Kind::Ascii } else { Kind::Int };
                self.vars.push((i.clone(), key));
                self.vars.push((e.clone(), elem));
                format!("${i}, ${e} := ")
            }
        };
        self.action(out, &format!("range {decl}{list}"));
        let dot = std::mem::replace(&mut self.dot, elem);
        self.ranges += 1;
        {
            let n = 1 + self.rng.below(3);
            self.body(out, n)
        };
        self.ranges -= 1;
        self.dot = dot;
        self.vars.truncate(mark);
        if self.rng.chance(30) {
            self.action(out, "else");
            self.body(out, 1);
        }
        self.action(out, "end");
        self.depth -= 1;
    }

    /// The body of a `define` or `block`: a template of its own, which sees only `$`.
    fn named_body(&mut self, out: &mut String, env: bool) {
        let vars = std::mem::take(&mut self.vars);
        let ranges = std::mem::replace(&mut self.ranges, 0);
        let dot = std::mem::replace(&mut self.dot, if env { Kind::Env } else { Kind::Str });
        self.dollar_env = env;
        self.depth = 1;
        let n = 1 + self.rng.below(2);
        self.body(out, n);
        self.depth = 0;
        self.dollar_env = true;
        self.dot = dot;
        self.ranges = ranges;
        self.vars = vars;
    }

    /// One template: perhaps a named template first, then a few items.
    fn template(&mut self) -> String {
        self.vars.clear();
        self.defines.clear();
        self.dot = Kind::Env;
        self.next_var = 0;
        let mut out = String::new();
        if self.rng.chance(20) {
            let name = format!("d{}", self.rng.below(3));
            // A template given the env, or one given a string (whose `$` is that string).
            let env = self.rng.chance(60);
            let _ = write!(out, "{{{{ define {name:?} }}}}");
            self.named_body(&mut out, env);
            out.push_str("{{ end }}");
            self.defines.push((name, env));
        }
        if self.rng.chance(8) {
            let name = format!("b{}", self.rng.below(2));
            let _ = write!(out, "{{{{ block {name:?} . }}}}");
            self.named_body(&mut out, true);
            out.push_str("{{ end }}");
        }
        {
            let n = 1 + self.rng.below(4);
            self.body(&mut out, n)
        };
        out
    }
}

/// The corpus as the generator makes it, in the file's format: a JSON array, one
/// template a line.
pub(in super::super) fn generate() -> String {
    let mut g = Gen {
        rng: Rng(SEED),
        vars: Vec::new(),
        dot: Kind::Env,
        ranges: 0,
        depth: 0,
        defines: Vec::new(),
        dollar_env: true,
        next_var: 0,
    };
    let lines: Vec<String> = (0..CASES)
        .map(|_| serde_json::to_string(&g.template()).unwrap())
        .collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}
