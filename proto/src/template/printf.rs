//! Go's `fmt.Sprintf`, `Sprint` and `Sprintln` over template values: the directive syntax
//! (`%[n]`, flags, `*` widths and precisions) and what Go writes for a missing, extra or
//! badly indexed argument. How one value prints under one verb is `verbs`.

use super::value::Value;
use super::verbs::{Flags, FmtError, Printer};
use crate::env::Env;

/// Go refuses widths and precisions over a million.
fn too_large(n: i64) -> bool {
    !(-1_000_000..=1_000_000).contains(&n)
}

/// A decimal number at `b[i..]`: its value, whether there was one, and where it ends. An
/// absurdly long number swallows the rest of the format, as in Go.
fn parse_num(b: &[u8], mut i: usize) -> (usize, bool, usize) {
    let mut num = 0i64;
    let mut found = false;
    while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        if too_large(num) {
            return (0, false, b.len());
        }
        num = num * 10 + i64::from(d - b'0');
        found = true;
        i += 1;
    }
    (num as usize, found, i)
}

struct Directives<'f, 'a> {
    b: &'f [u8],
    args: &'f [Value],
    reordered: bool,
    good_arg_num: bool,
    p: Printer<'a>,
}

impl Directives<'_, '_> {
    /// `[n]` at `i`: the argument it names (0-based), where it ends, and whether it was there.
    fn arg_number(&mut self, arg_num: usize, i: usize) -> (usize, usize, bool) {
        if self.b.get(i) != Some(&b'[') {
            return (arg_num, i, false);
        }
        self.reordered = true;
        let rest = &self.b[i..];
        let (index, wid, ok) = match rest.iter().position(|c| *c == b']') {
            Some(close) if rest.len() >= 3 => {
                let (n, found, end) = parse_num(&rest[..close], 1);
                if !found || end != close {
                    (0, close + 1, false)
                } else {
                    (n.wrapping_sub(1), close + 1, true)
                }
            }
            _ => (0, 1, false),
        };
        if ok && index < self.args.len() {
            return (index, i + wid, true);
        }
        self.good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    /// A `*` width or precision: the integer argument, if it is one.
    fn int_arg(&self, arg_num: usize) -> (i64, bool, usize) {
        let Some(v) = self.args.get(arg_num) else {
            return (0, false, arg_num);
        };
        let (n, ok) = match v {
            Value::Int(n) => (*n, true),
            Value::Byte(b) => (i64::from(*b), true),
            _ => (0, false),
        };
        if too_large(n) {
            return (0, false, arg_num + 1);
        }
        (n, ok, arg_num + 1)
    }

    fn run(&mut self) -> Result<(), FmtError> {
        let b = self.b;
        let end = b.len();
        let mut i = 0;
        let mut arg_num = 0;
        while i < end {
            self.good_arg_num = true;
            let start = i;
            while i < end && b[i] != b'%' {
                i += 1;
            }
            if i > start {
                self.put_bytes(start, i)?;
            }
            if i >= end {
                break;
            }
            i += 1;
            let mut f = Flags::default();
            while let Some(c) = b.get(i) {
                match c {
                    b'#' => f.sharp = true,
                    b'0' => f.zero = !f.minus,
                    b'+' => f.plus = true,
                    b'-' => {
                        f.minus = true;
                        f.zero = false;
                    }
                    b' ' => f.space = true,
                    _ => break,
                }
                i += 1;
            }
            self.p.f = f;
            let mut after_index;
            (arg_num, i, after_index) = self.arg_number(arg_num, i);
            if b.get(i) == Some(&b'*') {
                i += 1;
                let (wid, ok, next) = self.int_arg(arg_num);
                arg_num = next;
                if !ok {
                    self.p.put("%!(BADWIDTH)")?;
                }
                if ok {
                    self.p.f.wid = Some(wid.unsigned_abs() as usize);
                    if wid < 0 {
                        self.p.f.minus = true;
                        self.p.f.zero = false;
                    }
                }
                after_index = false;
            } else {
                let (wid, found, next) = parse_num(b, i);
                i = next;
                if found {
                    self.p.f.wid = Some(wid);
                    if after_index {
                        self.good_arg_num = false;
                    }
                }
            }
            if i < end && b[i] == b'.' {
                i += 1;
                if after_index {
                    self.good_arg_num = false;
                }
                (arg_num, i, after_index) = self.arg_number(arg_num, i);
                if b.get(i) == Some(&b'*') {
                    i += 1;
                    let (prec, ok, next) = self.int_arg(arg_num);
                    arg_num = next;
                    let ok = ok && prec >= 0;
                    if !ok {
                        self.p.put("%!(BADPREC)")?;
                    }
                    self.p.f.prec = ok.then_some(prec as usize);
                    after_index = false;
                } else {
                    let (prec, found, next) = parse_num(b, i);
                    i = next;
                    self.p.f.prec = Some(if found { prec } else { 0 });
                }
            }
            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, i);
            }
            if i >= end {
                self.p.put("%!(NOVERB)")?;
                break;
            }
            // The format is a str and `i` sits after ASCII, so a char starts here.
            let rest = std::str::from_utf8(&b[i..]).unwrap_or_default();
            let verb = rest.chars().next().unwrap_or('\u{FFFD}');
            i += verb.len_utf8();
            let mut buf = [0; 4];
            let verb_text: &str = verb.encode_utf8(&mut buf);
            match verb {
                '%' => self.p.put("%")?,
                _ if !self.good_arg_num => {
                    self.p.put("%!")?;
                    self.p.put(verb_text)?;
                    self.p.put("(BADINDEX)")?;
                }
                _ if arg_num >= self.args.len() => {
                    self.p.put("%!")?;
                    self.p.put(verb_text)?;
                    self.p.put("(MISSING)")?;
                }
                _ => {
                    if verb == 'v' {
                        // `%#v` is Go syntax; `+` only changes structs, which templates lack.
                        self.p.f.sharp_v = self.p.f.sharp;
                        self.p.f.sharp = false;
                        self.p.f.plus = false;
                    }
                    let args = self.args;
                    self.p.arg(&args[arg_num], verb)?;
                    arg_num += 1;
                }
            }
        }
        if !self.reordered && arg_num < self.args.len() {
            self.p.f = Flags::default();
            self.p.put("%!(EXTRA ")?;
            let args = self.args;
            for (k, v) in args[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.p.put(", ")?;
                }
                if *v == Value::Nil {
                    self.p.put("<nil>")?;
                } else {
                    self.p.put(v.type_name())?;
                    self.p.put("=")?;
                    self.p.arg(v, 'v')?;
                }
            }
            self.p.put(")")?;
        }
        Ok(())
    }

    fn put_bytes(&mut self, from: usize, to: usize) -> Result<(), FmtError> {
        // Cut at '%' or the ends, which are char boundaries of the format.
        let text = std::str::from_utf8(&self.b[from..to]).unwrap_or_default();
        self.p.put(text)
    }
}

/// `fmt.Sprintf(format, args…)`.
pub(super) fn sprintf(env: &Env, format: &str, args: &[Value]) -> Result<String, FmtError> {
    let mut d = Directives {
        b: format.as_bytes(),
        args,
        reordered: false,
        good_arg_num: true,
        p: Printer::new(env),
    };
    d.run()?;
    Ok(d.p.out.into_string())
}

/// `fmt.Sprint`: a space between two operands when neither is a string.
pub(super) fn sprint(env: &Env, args: &[Value]) -> Result<String, FmtError> {
    let mut p = Printer::new(env);
    let mut prev_string = false;
    for (k, v) in args.iter().enumerate() {
        let is_string = matches!(v, Value::Str(_) | Value::Missing(_));
        if k > 0 && !is_string && !prev_string {
            p.put(" ")?;
        }
        p.arg(v, 'v')?;
        prev_string = is_string;
    }
    Ok(p.out.into_string())
}

/// `fmt.Sprintln`: spaces between all operands, and a newline.
pub(super) fn sprintln(env: &Env, args: &[Value]) -> Result<String, FmtError> {
    let mut p = Printer::new(env);
    for (k, v) in args.iter().enumerate() {
        if k > 0 {
            p.put(" ")?;
        }
        p.arg(v, 'v')?;
    }
    p.put("\n")?;
    Ok(p.out.into_string())
}
