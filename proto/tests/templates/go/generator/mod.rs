//! The seeded generator of the differential corpus: random well-formed templates over the
//! fixed env (actions, pipelines, Go's builtins, literals of every kind, printf directives,
//! blocks, variables, named templates).
//!
//! It stays inside what our engine means to render as Go does: keys the env defines,
//! `.Key` only where `.` is the env, no slicing of non-ASCII text, no `printf` forms we
//! refuse (`%x`/`%b`/`#` of floats, `%p`), named templates always given data. Go's errors
//! (mixed-kind comparisons, indexes out of range, wrong types) are generated on purpose:
//! there our engine must fail too.

mod blocks;

pub(super) use blocks::generate;

use std::fmt::Write as _;

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
    /// Named templates so far, and whether each takes the env (else a string).
    defines: Vec<(String, bool)>,
    /// Whether `$` is the env (not inside a template given a string).
    dollar_env: bool,
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
                let env_var = self.vars.iter().rev().find(|(_, k)| *k == Kind::Env);
                if self.dot == Kind::Env && self.rng.chance(60) {
                    (format!(".{key}"), kind)
                } else if let (Some((name, _)), true) = (env_var, self.rng.chance(30)) {
                    (format!("${name}.{key}"), kind)
                } else if !self.dollar_env {
                    self.string_literal()
                } else if self.rng.chance(15) {
                    (format!("($).{key}"), kind)
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
                match (self.dollar_env, self.dot) {
                    (true, _) => (format!("(index $ {key:?})"), kind),
                    (false, Kind::Env) => (format!("(index . {key:?})"), kind),
                    _ => self.string_literal(),
                }
            }
            _ => match self.vars.iter().rev().find(|(_, k)| k.stringy()) {
                Some((name, kind)) => (format!("${name}"), *kind),
                None => self.string_literal(),
            },
        }
    }

    fn list_value(&mut self) -> String {
        let (sep, src) = match self.rng.below(4) {
            0 if self.dollar_env => (r#"",""#, "$.Hosts".to_string()),
            2 if self.dollar_env => (r#"" ""#, "$.Spaces".to_string()),
            0..=2 => (r#"",""#, r#""a,b,c""#.to_string()),
            _ => (r#""""#, r#""xyz""#.to_string()),
        };
        let list = format!("splitList {sep} {src}");
        if self.rng.chance(20) {
            format!("slice ({list}) {}", self.rng.below(4))
        } else {
            list
        }
    }

    /// A format string with a few directives; `floats` when a float may be among the values.
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
            let verb = self.rng.pick(&VERBS);
            for flag in ["-", "+", " ", "0", "#"] {
                // `#` on a float's %x is the one printf form we refuse.
                let refused = flag == "#" && floats && matches!(verb, "x" | "X");
                if self.rng.chance(12) && !refused {
                    f.push_str(flag);
                }
            }
            if self.rng.chance(5) {
                let _ = write!(f, "[{}]", 1 + self.rng.below(3));
            }
            if self.rng.chance(4) {
                f.push('*');
            } else if self.rng.chance(35) {
                let _ = write!(f, "{}", 1 + self.rng.below(12));
            }
            if self.rng.chance(25) {
                let _ = write!(f, ".{}", self.rng.below(5));
            }
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
}
