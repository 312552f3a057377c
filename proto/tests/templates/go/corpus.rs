//! The differential corpus: a seeded generator of random well-formed templates over the
//! fixed env (actions, pipelines, Go's builtins, literals of every kind, printf directives,
//! blocks, variables, named templates). `corpus.json` is what it makes, committed with
//! `corpus.golden.json`, Go's output (or failure) for each; the test checks both that the
//! generator still makes exactly that file and that our engine agrees with Go on every case.
//!
//! The generator stays inside what our engine means to render as Go does: keys the env
//! defines, `.Key` only where `.` is the env, no slicing of non-ASCII text, no `printf`
//! forms we refuse (`%x`/`%b`/`#` of floats, `%p`), named templates always given data.
//! Go's errors (mixed-kind comparisons, indexes out of range, wrong types) are generated
//! on purpose: there our engine must fail too.

use super::{differences, go_dir, goldens};
use std::fmt::Write as _;
use std::fs;

/// How many templates the corpus holds.
const CASES: usize = 2500;

/// The generator's seed: changing it (or the generator) changes the corpus, and the
/// goldens must then be regenerated with Go (scripts/template-goldens.sh).
const SEED: u64 = 0x5ea1_e7e3_91a7_e001;

/// xorshift64*: small, deterministic, good enough to pick among choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// What an expression yields, as far as the generator knows.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Str,
    /// A string of ASCII only, which `slice` may cut anywhere.
    Ascii,
    Int,
    Float,
    Bool,
    List,
    Env,
    Byte,
    /// Unknown (a variable or `and`/`or` of mixed operands).
    Any,
}

impl Kind {
    fn stringy(self) -> bool {
        matches!(self, Kind::Str | Kind::Ascii)
    }
}

/// The env keys that are Go identifiers, and whether their values are ASCII.
const KEYS: [(&str, bool); 15] = [
    ("HostIP", true),
    ("Port", true),
    ("Name", true),
    ("Empty", true),
    ("Zero", true),
    ("Neg", true),
    ("Float", true),
    ("Hosts", true),
    ("Mixed", true),
    ("Unicode", false),
    ("Spaces", true),
    ("Tab", true),
    ("Token", true),
    ("Encoded", true),
    ("True", true),
];

const TEXTS: [&str; 12] = [
    "x", " ", "\n", "  \n  ", "a b", "key: ", "\t", "-", "é", "[", "]", ",",
];

const STRINGS: [&str; 14] = [
    r#""""#,
    r#""a""#,
    r#""abc""#,
    r#""10""#,
    r#""9""#,
    r#""a,b,c""#,
    r#""x y""#,
    r#""<&>""#,
    r#""tab\there""#,
    r#""q\"uote""#,
    r#""\u00e9t\u00e9""#,
    r#""\x41\101""#,
    "`raw\\n`",
    r#""%d%%""#,
];

const INTS: [&str; 16] = [
    "0", "1", "2", "3", "-1", "42", "-42", "255", "0x1F", "0o17", "017", "0b101", "1_000", "'a'",
    "'\\n'", "65",
];

const FLOATS: [&str; 10] = [
    "1.5",
    "0.25",
    "-2.5",
    "1e3",
    "1e-7",
    ".5",
    "2.0",
    "123456789.0",
    "1e21",
    "3.14159",
];

const VERBS: [&str; 18] = [
    "v", "s", "d", "q", "x", "X", "o", "b", "c", "U", "e", "E", "f", "F", "g", "G", "t", "T",
];

struct Gen {
    rng: Rng,
    /// Variables in scope with what they hold, innermost last.
    vars: Vec<(String, Kind)>,
    /// What `.` is.
    dot: Kind,
    ranges: usize,
    depth: usize,
    defines: Vec<String>,
    next_var: usize,
}

impl Gen {
    fn string_literal(&mut self) -> (String, Kind) {
        let s = self.rng.pick(&STRINGS);
        let kind = if s.contains("\\u00e9") {
            Kind::Str
        } else {
            Kind::Ascii
        };
        (s.to_string(), kind)
    }

    /// A value of a string kind: literal, env key or `index . "key"`.
    fn string_value(&mut self) -> (String, Kind) {
        match self.rng.below(4) {
            0 => self.string_literal(),
            1 => {
                let (key, ascii) = KEYS[self.rng.below(KEYS.len())];
                let kind = if ascii { Kind::Ascii } else { Kind::Str };
                if self.dot == Kind::Env && self.rng.chance(70) {
                    (format!(".{key}"), kind)
                } else {
                    (format!("$.{key}"), kind)
                }
            }
            2 => {
                let key = if self.rng.chance(30) {
                    "etcd-dir"
                } else {
                    KEYS[self.rng.below(KEYS.len())].0
                };
                let ascii = key != "Unicode";
                let kind = if ascii { Kind::Ascii } else { Kind::Str };
                (format!("(index $ {key:?})"), kind)
            }
            _ => match self.vars.iter().rev().find(|(_, k)| k.stringy()) {
                Some((name, kind)) => (format!("${name}"), *kind),
                None => self.string_literal(),
            },
        }
    }

    fn list_value(&mut self) -> String {
        let (sep, src) = match self.rng.below(4) {
            0 => (r#"",""#, "$.Hosts".to_string()),
            1 => (r#"",""#, r#""a,b,c""#.to_string()),
            2 => (r#"" ""#, "$.Spaces".to_string()),
            _ => (r#""""#, r#""xyz""#.to_string()),
        };
        let list = format!("splitList {sep} {src}");
        if self.rng.chance(20) {
            format!("slice ({list}) {}", self.rng.below(4))
        } else {
            list
        }
    }

    /// A format string with a few directives and the kinds of values it should get.
    fn format(&mut self, floats: bool) -> String {
        let mut f = String::from("\"");
        for _ in 0..1 + self.rng.below(3) {
            if self.rng.chance(40) {
                f.push_str(self.rng.pick(&["<", " ", "=", "ab", "|"]));
            }
            if self.rng.chance(5) {
                f.push_str("%%");
                continue;
            }
            f.push('%');
            for flag in ["-", "+", " ", "0", "#"] {
                if self.rng.chance(12) && !(flag == "#" && floats) {
                    f.push_str(flag);
                }
            }
            if self.rng.chance(5) {
                let _ = write!(f, "[{}]", 1 + self.rng.below(3));
            }
            if self.rng.chance(35) {
                let _ = write!(f, "{}", 1 + self.rng.below(12));
            }
            if self.rng.chance(25) {
                let _ = write!(f, ".{}", self.rng.below(5));
            }
            let verb = loop {
                let v = self.rng.pick(&VERBS);
                if !(floats && matches!(v, "x" | "X" | "b")) {
                    break v;
                }
            };
            f.push_str(verb);
        }
        f.push('"');
        f
    }

    /// An operand: a literal, a key, a variable, `.`, or a parenthesized call.
    fn operand(&mut self) -> (String, Kind) {
        match self.rng.below(if self.depth > 2 { 7 } else { 9 }) {
            0 | 1 => self.string_value(),
            2 => (self.rng.pick(&INTS).to_string(), Kind::Int),
            3 => (self.rng.pick(&FLOATS).to_string(), Kind::Float),
            4 => (self.rng.pick(&["true", "false"]).to_string(), Kind::Bool),
            5 => match self.vars.last() {
                Some((name, kind)) => (format!("${name}"), *kind),
                None => self.string_value(),
            },
            6 => (".".to_string(), self.dot),
            _ => {
                self.depth += 1;
                let (call, kind) = self.call();
                self.depth -= 1;
                (format!("({call})"), kind)
            }
        }
    }

    /// Arguments of a function, where Go also allows `nil`.
    fn operands(&mut self, n: usize) -> (Vec<String>, Vec<Kind>) {
        (0..n)
            .map(|_| {
                if self.rng.chance(4) {
                    ("nil".to_string(), Kind::Any)
                } else {
                    self.operand()
                }
            })
            .unzip()
    }

    /// A function call.
    fn call(&mut self) -> (String, Kind) {
        match self.rng.below(14) {
            0 => {
                let name = self.rng.pick(&["and", "or"]);
                let (args, kinds) = {
                    let n = 1 + self.rng.below(3);
                    self.operands(n)
                };
                let kind = if kinds.iter().all(|k| *k == kinds[0]) {
                    kinds[0]
                } else {
                    Kind::Any
                };
                (format!("{name} {}", args.join(" ")), kind)
            }
            1 => (format!("not {}", self.operands(1).0[0]), Kind::Bool),
            2 => {
                let name = self.rng.pick(&["eq", "ne", "lt", "le", "gt", "ge"]);
                let n = if name == "eq" {
                    2 + self.rng.below(2)
                } else {
                    2
                };
                let args: Vec<String> = (0..n)
                    .map(|_| {
                        if self.rng.chance(50) {
                            self.string_value().0
                        } else {
                            self.operand().0
                        }
                    })
                    .collect();
                (format!("{name} {}", args.join(" ")), Kind::Bool)
            }
            3 => {
                let arg = match self.rng.below(3) {
                    0 => self.list_value(),
                    1 => self.string_value().0,
                    _ => self.operand().0,
                };
                (format!("len ({arg})"), Kind::Int)
            }
            4 => {
                let (item, kind) = if self.rng.chance(50) {
                    (self.list_value(), Kind::Str)
                } else {
                    let (s, _) = self.string_value();
                    (s, Kind::Byte)
                };
                let i = self
                    .rng
                    .pick(&["0", "1", "2", "3", "-1", "'\\x01'", "\"0\""]);
                (format!("index ({item}) {i}"), kind)
            }
            5 => {
                let (item, kind) = if self.rng.chance(40) {
                    (self.list_value(), Kind::List)
                } else {
                    let (s, k) = self.string_value();
                    if k == Kind::Ascii {
                        (s, Kind::Ascii)
                    } else {
                        (r#""hello""#.to_string(), Kind::Ascii)
                    }
                };
                let n = self.rng.below(3);
                let idx: Vec<String> = (0..n).map(|_| self.rng.below(5).to_string()).collect();
                (format!("slice ({item}) {}", idx.join(" ")), kind)
            }
            6..=8 => {
                let (args, kinds) = {
                    let n = self.rng.below(4);
                    self.operands(n)
                };
                let floats = kinds.iter().any(|k| matches!(k, Kind::Float | Kind::Any));
                let f = self.format(floats);
                (format!("printf {f} {}", args.join(" ")), Kind::Str)
            }
            9 => {
                let name = self.rng.pick(&["print", "println"]);
                let (args, _) = {
                    let n = self.rng.below(4);
                    self.operands(n)
                };
                (format!("{name} {}", args.join(" ")), Kind::Str)
            }
            10 => {
                let name = self.rng.pick(&["html", "js", "urlquery"]);
                let (args, _) = {
                    let n = 1 + self.rng.below(2);
                    self.operands(n)
                };
                (format!("{name} {}", args.join(" ")), Kind::Str)
            }
            11 => {
                let (s, _) = self.string_value();
                (format!("b64enc {s}"), Kind::Ascii)
            }
            12 => (self.list_value(), Kind::List),
            _ => self.operand(),
        }
    }

    /// A pipeline: a call or operand, perhaps piped into more functions.
    fn pipeline(&mut self) -> (String, Kind) {
        let (mut p, mut kind) = if self.rng.chance(60) {
            self.call()
        } else {
            self.operand()
        };
        while self.rng.chance(20) {
            let (next, k) = match self.rng.below(5) {
                0 if kind.stringy() || kind == Kind::List => ("len".to_string(), Kind::Int),
                0 => ("js".to_string(), Kind::Str),
                1 => ("not".to_string(), Kind::Bool),
                2 => (format!("printf {}", self.format(true)), Kind::Str),
                3 => ("html".to_string(), Kind::Str),
                _ => (format!("print {}", self.operand().0), Kind::Str),
            };
            let _ = write!(p, " | {next}");
            kind = k;
        }
        (p, kind)
    }

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
                let (p, _) = self.pipeline();
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
                } else if let Some(name) = self.defines.last().cloned() {
                    let data = if self.dot == Kind::Env { "." } else { "$" };
                    self.action(out, &format!("template {name:?} {data}"));
                } else {
                    out.push_str(self.rng.pick(&TEXTS));
                }
            }
        }
    }

    fn range(&mut self, out: &mut String) {
        self.depth += 1;
        let (list, elem) = if self.rng.chance(20) {
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

    /// One template: perhaps a named template first, then a few items.
    fn template(&mut self) -> String {
        self.vars.clear();
        self.defines.clear();
        self.dot = Kind::Env;
        self.next_var = 0;
        let mut out = String::new();
        if self.rng.chance(15) {
            let name = format!("d{}", self.rng.below(3));
            let _ = write!(out, "{{{{ define {name:?} }}}}");
            self.depth = 1;
            {
                let n = 1 + self.rng.below(2);
                self.body(&mut out, n)
            };
            self.depth = 0;
            out.push_str("{{ end }}");
            self.defines.push(name);
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
fn generate() -> String {
    let mut g = Gen {
        rng: Rng(SEED),
        vars: Vec::new(),
        dot: Kind::Env,
        ranges: 0,
        depth: 0,
        defines: Vec::new(),
        next_var: 0,
    };
    let lines: Vec<String> = (0..CASES)
        .map(|_| serde_json::to_string(&g.template()).unwrap())
        .collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}

#[test]
fn the_corpus_is_what_the_generator_makes() {
    let path = go_dir().join("corpus.json");
    let made = generate();
    if std::env::var_os("REGENERATE_TEMPLATE_CORPUS").is_some() {
        fs::write(&path, &made).unwrap();
        return;
    }
    let committed = fs::read_to_string(&path).unwrap();
    assert!(
        committed == made,
        "corpus.json is not what the generator makes: run scripts/template-goldens.sh"
    );
}

#[test]
fn the_corpus_renders_as_go_renders_it() {
    let srcs: Vec<String> =
        serde_json::from_str(&fs::read_to_string(go_dir().join("corpus.json")).unwrap()).unwrap();
    assert!(srcs.len() >= 2000, "{}", srcs.len());
    let want = goldens("corpus.golden.json");
    let named: Vec<(String, String)> = srcs
        .into_iter()
        .enumerate()
        .map(|(k, src)| (format!("corpus#{k}"), src))
        .collect();
    let diffs = differences(&named, &want);
    let failing = want.iter().filter(|r| !r.ok).count();
    assert!(
        diffs.is_empty(),
        "{} of {} cases differ from Go ({failing} fail in Go):\n{}",
        diffs.len(),
        named.len(),
        diffs
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
