//! Go's literals inside actions: numbers as `text/template` reads them (`0x1F`, `0o17`,
//! `017`, `0b101`, `1_000`, `1.5`, `1e3`, `.5`, `+3`), character constants (`'a'`, `'\n'`)
//! and the escapes of quoted strings. A number is an `int` unless it is written as a
//! float (with `.`, `e` or `E`), as Go's template engine decides.

use super::value::Value;

/// Whether Go accepts the `_` separators of `digits` (after the sign and base prefix have
/// been read off `full`): each must sit between two digits, or follow the prefix.
fn underscores_ok(full: &str) -> bool {
    let mut prev = '^';
    let body = full.trim_start_matches(['+', '-']);
    let (prefixed, rest) = match body.get(..2) {
        Some("0x" | "0X" | "0o" | "0O" | "0b" | "0B") => (true, &body[2..]),
        _ => (false, body),
    };
    if prefixed {
        prev = '0';
    }
    for c in rest.chars() {
        if c == '_' {
            if prev != '0' {
                return false;
            }
            prev = '_';
        } else if c.is_ascii_hexdigit() || (prefixed && c.is_ascii_alphanumeric()) {
            prev = '0';
        } else {
            if prev == '_' {
                return false;
            }
            prev = '!';
        }
    }
    prev != '_'
}

/// `text` as `strconv.ParseInt(text, 0, 64)` reads it.
fn parse_int(text: &str) -> Option<i64> {
    if text.contains('_') && !underscores_ok(text) {
        return None;
    }
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let (radix, digits) = match body.get(..2) {
        Some("0x" | "0X") => (16, &body[2..]),
        Some("0o" | "0O") => (8, &body[2..]),
        Some("0b" | "0B") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// A number literal, as Go's template parser and executor read it.
pub(super) fn number(text: &str) -> Result<Value, String> {
    if text.ends_with('i') {
        return Err(format!(
            "number {text}: imaginary numbers are not supported"
        ));
    }
    if let Some(n) = parse_int(text) {
        return Ok(Value::Int(n));
    }
    let body = text.trim_start_matches(['+', '-']);
    let hex = body.starts_with("0x") || body.starts_with("0X");
    if hex && body.contains(['p', 'P']) {
        return hex_float(text).ok_or_else(|| format!("illegal number syntax: {text:?}"));
    }
    if hex || !body.contains(['.', 'e', 'E']) {
        // Digits Go could not read as an int (`08`, `1__0`, more than 64 bits).
        return Err(format!(
            "number {text} is not an int (out of range or malformed)"
        ));
    }
    if text.contains('_') && !underscores_ok(text) {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    match clean.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Value::Float(x)),
        _ => Err(format!("illegal number syntax: {text:?}")),
    }
}

/// A hexadecimal float, `0x1.8p-2`: hexadecimal digits, a point perhaps, then a power of two.
fn hex_float(text: &str) -> Option<Value> {
    if text.contains('_') && !underscores_ok(text) {
        return None;
    }
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let body = body.get(2..)?;
    let (mantissa, exp) = body.split_once(['p', 'P'])?;
    let mut exp: i64 = exp.parse().ok()?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut m: u128 = 0;
    for (k, c) in int.chars().chain(frac.chars()).enumerate() {
        let d = u128::from(c.to_digit(16)?);
        if m >> 120 == 0 {
            m = m * 16 + d;
            if k >= int.len() {
                exp -= 4;
            }
        } else if k < int.len() {
            // Digits past 120 bits only scale the value.
            exp += 4;
        }
    }
    // The mantissa rounds once to 53 bits; scaling by a power of two is exact in range.
    let mut x = m as f64;
    let exp = i32::try_from(exp.clamp(-5000, 5000)).ok()?;
    let half = exp / 2;
    x *= 2f64.powi(half);
    x *= 2f64.powi(exp - half);
    if neg {
        x = -x;
    }
    x.is_finite().then_some(Value::Float(x))
}

/// One character or escape from `chars` inside a literal quoted by `quote`: its value, and
/// whether it is a raw byte (`\xff`, `\377`), which only character constants may hold.
pub(super) fn unquote_char(
    chars: &mut impl Iterator<Item = char>,
    quote: char,
) -> Result<(u32, bool), String> {
    let Some(c) = chars.next() else {
        return Err("unterminated literal".into());
    };
    if c != '\\' {
        return Ok((c as u32, false));
    }
    fn hex(chars: &mut impl Iterator<Item = char>, n: usize) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = chars
                .next()
                .and_then(|c| c.to_digit(16))
                .ok_or("a \\x, \\u or \\U escape needs hexadecimal digits")?;
            v = v * 16 + d;
        }
        Ok(v)
    }
    let e = chars.next().ok_or("unterminated escape")?;
    Ok(match e {
        'a' => (7, false),
        'b' => (8, false),
        'f' => (0xc, false),
        'n' => (u32::from(b'\n'), false),
        'r' => (u32::from(b'\r'), false),
        't' => (u32::from(b'\t'), false),
        'v' => (0xb, false),
        '\\' => (u32::from(b'\\'), false),
        '\'' | '"' if e == quote => (e as u32, false),
        'x' => (hex(chars, 2)?, true),
        'u' | 'U' => {
            let v = hex(chars, if e == 'u' { 4 } else { 8 })?;
            if char::from_u32(v).is_none() {
                return Err(format!("escape \\{e}{v:x} is not a character"));
            }
            (v, false)
        }
        '0'..='7' => {
            let mut v = e.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                let d = chars
                    .next()
                    .and_then(|c| c.to_digit(8))
                    .ok_or("an octal escape needs three digits")?;
                v = v * 8 + d;
            }
            if v > 255 {
                return Err("octal escape value over 255".into());
            }
            (v, true)
        }
        other => return Err(format!("unknown escape \\{other}")),
    })
}

/// The body of a `'…'` constant (without the quotes) as the int Go makes of it.
pub(super) fn char_constant(body: &str) -> Result<Value, String> {
    let mut chars = body.chars();
    let (v, _) = unquote_char(&mut chars, '\'')?;
    if chars.next().is_some() {
        return Err(format!("malformed character constant: '{body}'"));
    }
    Ok(Value::Int(i64::from(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_go_reads_them() {
        for (text, want) in [
            ("0x10", Value::Int(16)),
            ("017", Value::Int(15)),
            ("0o17", Value::Int(15)),
            ("0b101", Value::Int(5)),
            ("1_000", Value::Int(1000)),
            ("+3", Value::Int(3)),
            ("-0x_1F", Value::Int(-31)),
            ("1e3", Value::Float(1000.0)),
            (".5", Value::Float(0.5)),
            ("1.0", Value::Float(1.0)),
            ("-9223372036854775808", Value::Int(i64::MIN)),
        ] {
            assert_eq!(number(text), Ok(want), "{text}");
        }
        for bad in [
            "08",
            "1__0",
            "1_",
            "9223372036854775808",
            "0x",
            "1e999",
            "0x1p9999",
            "0x1.8",
            "1i",
        ] {
            assert!(number(bad).is_err(), "{bad}");
        }
        assert_eq!(number("0x1p4"), Ok(Value::Float(16.0)));
        assert_eq!(number("-0x1.8p-1"), Ok(Value::Float(-0.75)));
        assert_eq!(char_constant("\\n"), Ok(Value::Int(10)));
        assert_eq!(char_constant("é"), Ok(Value::Int(233)));
        assert_eq!(char_constant("\\377"), Ok(Value::Int(255)));
        assert!(char_constant("ab").is_err() && char_constant("\\\"").is_err());
    }
}
