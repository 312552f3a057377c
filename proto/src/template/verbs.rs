//! How Go's `fmt` prints one value under one verb, with its flags, width and precision:
//! the layouts of integers, floats, strings, lists and the env, and the `%!d(string=…)`
//! form of a verb that does not fit the value. `printf` (which parses the directives) and
//! `print` drive it. Text goes into a [`Capped`] string, so no verb can build past the limit.

use super::float;
use super::limits::Capped;
use super::quote::{can_backquote, is_print, quote, quote_rune};
use super::value::Value;
use crate::env::Env;

/// Why formatting stopped.
#[derive(Debug, PartialEq)]
pub(super) enum FmtError {
    /// The text would pass the limit of one string.
    Full,
    /// A Go form this engine does not print, named.
    Unsupported(&'static str),
}

type Res = Result<(), FmtError>;

/// The flags, width and precision of one directive.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Flags {
    pub plus: bool,
    pub minus: bool,
    pub sharp: bool,
    pub space: bool,
    pub zero: bool,
    /// `%#v`: Go syntax.
    pub sharp_v: bool,
    pub wid: Option<usize>,
    pub prec: Option<usize>,
}

/// Formats values into one string.
pub(super) struct Printer<'a> {
    pub out: Capped,
    pub env: &'a Env,
    pub f: Flags,
}

impl<'a> Printer<'a> {
    pub(super) fn new(env: &'a Env) -> Printer<'a> {
        Printer {
            out: Capped::default(),
            env,
            f: Flags::default(),
        }
    }

    pub(super) fn put(&mut self, s: &str) -> Res {
        if self.out.push(s) {
            Ok(())
        } else {
            Err(FmtError::Full)
        }
    }

    fn padding(&mut self, n: usize) -> Res {
        let byte = if self.f.zero { "0" } else { " " };
        self.put(&byte.repeat(n))
    }

    /// Writes `s` padded to the width (counted in characters), on the left unless `-`.
    fn pad(&mut self, s: &str) -> Res {
        let Some(wid) = self.f.wid else {
            return self.put(s);
        };
        let fill = wid.saturating_sub(s.chars().count());
        if self.f.minus {
            self.put(s)?;
            self.padding(fill)
        } else {
            self.padding(fill)?;
            self.put(s)
        }
    }

    /// `pad` with zero padding turned off, for numbers whose zeros are already placed.
    fn pad_spaces(&mut self, s: &str) -> Res {
        let zero = std::mem::replace(&mut self.f.zero, false);
        let r = self.pad(s);
        self.f.zero = zero;
        r
    }

    /// Prints `v` under `verb`.
    pub(super) fn arg(&mut self, v: &Value, verb: char) -> Res {
        match (v, verb) {
            (Value::Nil, 'v' | 'T') => self.pad("<nil>"),
            (Value::Nil, _) => self.bad_verb(v, verb),
            // The type's name is text: the precision cuts it.
            (_, 'T') => self.string(&Value::Nil, v.type_name(), 's'),
            (Value::List(_) | Value::Env, 'p') => Err(FmtError::Unsupported(
                "%p of a list or the env (it prints a memory address)",
            )),
            (Value::Bool(b), 't' | 'v') => self.pad(if *b { "true" } else { "false" }),
            (Value::Bool(_), _) => self.bad_verb(v, verb),
            (Value::Int(n), _) => self.integer(v, *n as u64, true, verb),
            (Value::Byte(b), _) => self.integer(v, u64::from(*b), false, verb),
            (Value::Float(x), _) => self.float(v, *x, verb),
            (Value::Str(s), _) => self.string(v, s, verb),
            // Callers refuse undefined keys before formatting; as text one is "".
            (Value::Missing(_), _) => self.string(v, "", verb),
            (Value::List(items), _) => {
                if self.f.sharp_v {
                    self.put("[]string{")?;
                } else {
                    self.put("[")?;
                }
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        self.put(if self.f.sharp_v { ", " } else { " " })?;
                    }
                    self.arg(item, verb)?;
                }
                self.put(if self.f.sharp_v { "}" } else { "]" })
            }
            (Value::Env, _) => {
                let env = self.env;
                self.put(if self.f.sharp_v {
                    "map[string]string{"
                } else {
                    "map["
                })?;
                for (k, (key, value)) in env.iter().enumerate() {
                    if k > 0 {
                        self.put(if self.f.sharp_v { ", " } else { " " })?;
                    }
                    self.arg(&Value::Str(key.as_str().into()), verb)?;
                    self.put(":")?;
                    self.arg(&Value::Str(value.as_str().into()), verb)?;
                }
                self.put(if self.f.sharp_v { "}" } else { "]" })
            }
        }
    }

    /// `%!verb(type=value)`: the verb does not fit the value.
    fn bad_verb(&mut self, v: &Value, verb: char) -> Res {
        self.put("%!")?;
        self.put(verb.encode_utf8(&mut [0; 4]))?;
        self.put("(")?;
        if *v == Value::Nil {
            self.put("<nil>")?;
        } else {
            self.put(v.type_name())?;
            self.put("=")?;
            self.arg(v, 'v')?;
        }
        self.put(")")
    }

    fn integer(&mut self, v: &Value, u: u64, signed: bool, verb: char) -> Res {
        match verb {
            'v' if self.f.sharp_v && !signed => {
                let sharp = std::mem::replace(&mut self.f.sharp, true);
                let r = self.digits(u, 16, false, verb, false);
                self.f.sharp = sharp;
                r
            }
            'v' | 'd' => self.digits(u, 10, signed, verb, false),
            'b' => self.digits(u, 2, signed, verb, false),
            'o' | 'O' => self.digits(u, 8, signed, verb, false),
            'x' => self.digits(u, 16, signed, verb, false),
            'X' => self.digits(u, 16, signed, verb, true),
            'c' => {
                let c = rune(u);
                self.pad(c.encode_utf8(&mut [0; 4]))
            }
            'q' => {
                let c = rune(u);
                if self.f.sharp && is_print(c) {
                    self.pad(&format!("'{c}'"))
                } else {
                    self.pad(&quote_rune(c, self.f.plus))
                }
            }
            'U' => self.unicode(u),
            _ => self.bad_verb(v, verb),
        }
    }

    /// An integer in `base`, with Go's precision, zero padding, prefixes and sign.
    fn digits(&mut self, u: u64, base: u64, signed: bool, verb: char, upper: bool) -> Res {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative {
            (u as i64).unsigned_abs()
        } else {
            u
        };
        let mut prec = 0;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let zero = std::mem::replace(&mut self.f.zero, false);
                let r = self.padding(self.f.wid.unwrap_or(0));
                self.f.zero = zero;
                return r;
            }
        } else if let (true, Some(wid)) = (self.f.zero, self.f.wid) {
            prec = wid;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let table: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        // Built right to left, then reversed.
        let mut buf = Vec::new();
        loop {
            buf.push(table[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while buf.len() < prec {
            buf.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => buf.extend_from_slice(b"b0"),
                8 if buf.last() != Some(&b'0') => buf.push(b'0'),
                16 => buf.extend_from_slice(if upper { b"X0" } else { b"x0" }),
                _ => {}
            }
        }
        if verb == 'O' {
            buf.extend_from_slice(b"o0");
        }
        if negative {
            buf.push(b'-');
        } else if self.f.plus {
            buf.push(b'+');
        } else if self.f.space {
            buf.push(b' ');
        }
        buf.reverse();
        // Only ASCII was pushed.
        let text: String = buf.into_iter().map(char::from).collect();
        self.pad_spaces(&text)
    }

    /// `U+0041`, and with `#` the character: `U+0041 'A'`.
    fn unicode(&mut self, u: u64) -> Res {
        let prec = self.f.prec.filter(|p| *p > 4).unwrap_or(4);
        let mut text = format!("U+{u:0prec$X}");
        if self.f.sharp
            && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32)
            && is_print(c)
        {
            text.push_str(&format!(" '{c}'"));
        }
        self.pad_spaces(&text)
    }

    fn float(&mut self, v: &Value, x: f64, verb: char) -> Res {
        let prec = match verb {
            'v' | 'g' | 'G' => None,
            'e' | 'E' | 'f' | 'F' => Some(6),
            'x' | 'X' if self.f.sharp => {
                return Err(FmtError::Unsupported("the # flag on %x and %X of a float"));
            }
            'b' | 'x' | 'X' => None,
            _ => return self.bad_verb(v, verb),
        };
        let verb = if verb == 'v' { 'g' } else { verb };
        let prec = self.f.prec.or(prec);
        let num = match verb {
            'b' => float::binary(x),
            'x' | 'X' => float::hex(x, prec, verb == 'X'),
            _ => float::format(x, verb, prec),
        };
        let (sign, body) = match num.strip_prefix('-') {
            Some(body) => ('-', body.to_string()),
            None => ('+', num),
        };
        let body = if self.f.sharp && verb != 'b' {
            sharp_float(&body, verb, prec)
        } else {
            body
        };
        let body = body.as_str();
        let sign = if self.f.space && sign == '+' && !self.f.plus {
            ' '
        } else {
            sign
        };
        if self.f.plus || sign != '+' {
            let signed = format!("{sign}{body}");
            if let (true, Some(wid)) = (self.f.zero, self.f.wid)
                && wid > signed.len()
            {
                self.put(&signed[..1])?;
                self.padding(wid - signed.len())?;
                return self.put(body);
            }
            return self.pad(&signed);
        }
        self.pad(body)
    }

    fn string(&mut self, v: &Value, s: &str, verb: char) -> Res {
        if let 'x' | 'X' = verb {
            // Here the precision counts bytes.
            let s = match self.f.prec {
                Some(p) => &s.as_bytes()[..p.min(s.len())],
                None => s.as_bytes(),
            };
            return self.hex_string(s, verb == 'X');
        }
        // The precision counts characters.
        let s = match self.f.prec {
            Some(p) => s.char_indices().nth(p).map_or(s, |(end, _)| &s[..end]),
            None => s,
        };
        match verb {
            'v' if self.f.sharp_v => self.pad(&quote(s, false)),
            'v' | 's' => self.pad(s),
            'q' if self.f.sharp && can_backquote(s) => self.pad(&format!("`{s}`")),
            'q' => self.pad(&quote(s, self.f.plus)),
            _ => self.bad_verb(v, verb),
        }
    }

    /// `%x` of a string: two digits a byte, ` ` between bytes with the space flag, `0x` with `#`.
    fn hex_string(&mut self, bytes: &[u8], upper: bool) -> Res {
        let table: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        let prefix = if upper { "0X" } else { "0x" };
        let mut text = String::new();
        if self.f.sharp && !bytes.is_empty() {
            text.push_str(prefix);
        }
        for (k, b) in bytes.iter().enumerate() {
            if self.f.space && k > 0 {
                text.push(' ');
                if self.f.sharp {
                    text.push_str(prefix);
                }
            }
            text.push(char::from(table[usize::from(b >> 4)]));
            text.push(char::from(table[usize::from(b & 0xf)]));
        }
        // The encoding is padded with spaces or zeros like any text, by bytes (all ASCII).
        self.pad(&text)
    }
}

/// A float under `#`: always a decimal point, and for `%g` the trailing zeros that make up
/// the precision (6 by default) in significant digits.
fn sharp_float(body: &str, verb: char, prec: Option<usize>) -> String {
    let (number, exponent) = match body.find(['e', 'E']) {
        Some(k) => body.split_at(k),
        None => (body, ""),
    };
    let mut missing = match verb {
        'g' | 'G' => prec.unwrap_or(6),
        _ => 0,
    };
    let significant = number
        .trim_start_matches(['0', '.'])
        .chars()
        .filter(char::is_ascii_digit)
        .count();
    missing = missing.saturating_sub(significant);
    let mut out = number.to_string();
    if !number.contains('.') {
        // A lone zero counts as one significant digit.
        if number == "0" {
            missing = missing.saturating_sub(1);
        }
        out.push('.');
    }
    out.push_str(&"0".repeat(missing));
    out.push_str(exponent);
    out
}

/// The character `%c` prints for `u`: Go's replacement character when `u` is none.
fn rune(u: u64) -> char {
    u32::try_from(u)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}')
}
