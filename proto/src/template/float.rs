//! Go's formatting of a float64 (`strconv.FormatFloat` with the `e`, `f` and `g` formats),
//! built from the decimal digits Rust's formatter computes: both round correctly, so the
//! digits agree, and only their layout is Go's. A leaf module: values print floats with it
//! and so does `printf`.

/// The decimal digits of `|x|` (no leading zeros, at least one digit) and the position of
/// the decimal point: `x = 0.d1d2… × 10^dp`. `sig` rounds to that many significant digits;
/// `None` takes the shortest digits that read back as `x`.
fn digits(x: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    let text = match sig {
        None => format!("{:e}", x.abs()),
        Some(n) => format!("{:.*e}", n.saturating_sub(1), x.abs()),
    };
    // `{:e}` writes `d[.ddd]e[-]x`, so both halves are always there.
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// `d.ddde±xx` with `prec` digits after the point.
fn layout_e(out: &mut String, digits: &[u8], dp: i32, prec: usize, upper: bool) {
    out.push(char::from(digits.first().copied().unwrap_or(b'0')));
    if prec > 0 {
        out.push('.');
        for k in 1..=prec {
            out.push(char::from(digits.get(k).copied().unwrap_or(b'0')));
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if digits.iter().all(|d| *d == b'0') {
        0
    } else {
        dp - 1
    };
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

/// `ddd.ddd` with `prec` digits after the point.
fn layout_f(out: &mut String, digits: &[u8], dp: i32, prec: usize) {
    let digit = |k: i64| -> char {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k))
            .map_or('0', |d| char::from(*d))
    };
    if dp > 0 {
        for k in 0..i64::from(dp) {
            out.push(digit(k));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for k in 1..=prec as i64 {
            out.push(digit(i64::from(dp) + k - 1));
        }
    }
}

/// `x` in format `e`, `E`, `f`, `F`, `g` or `G` with precision `prec` (`None`: Go's -1, the
/// shortest for `g`), sign included.
pub(super) fn format(x: f64, verb: char, prec: Option<usize>) -> String {
    let mut out = String::new();
    if x.is_sign_negative() {
        out.push('-');
    }
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        out.push_str("Inf");
        return out;
    }
    match verb {
        'e' | 'E' => {
            let prec = prec.unwrap_or(6);
            let (d, dp) = digits(x, Some(prec + 1));
            layout_e(&mut out, &d, dp, prec, verb == 'E');
        }
        'f' | 'F' => {
            let text = format!("{:.*}", prec.unwrap_or(6), x.abs());
            out.push_str(&text);
        }
        _ => {
            let shortest = prec.is_none();
            let (mut d, dp) = digits(x, prec.map(|p| p.max(1)));
            // Go's decimal digits carry no trailing zeros.
            while d.len() > 1 && d.last() == Some(&b'0') {
                d.pop();
            }
            let nd = d.len() as i32;
            let mut p = prec.map_or(nd, |p| p.max(1) as i32);
            let mut eprec = p;
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                layout_e(&mut out, &d, dp, (p - 1).max(0) as usize, verb == 'G');
            } else {
                if p > dp {
                    p = nd;
                }
                layout_f(&mut out, &d, dp, (p - dp).max(0) as usize);
            }
        }
    }
    out
}

/// `x` as `%b` writes it: the binary mantissa and exponent, `4503599627370496p-52`.
pub(super) fn binary(x: f64) -> String {
    let bits = x.to_bits();
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1 << 52) - 1);
    let exp = if biased == 0 {
        -1074
    } else {
        mant |= 1 << 52;
        biased - 1075
    };
    let plus = if exp >= 0 { "+" } else { "" };
    format!("{sign}{mant}p{plus}{exp}")
}

/// `x` as `%x` (or `%X` when `upper`) writes it: `0x1.8p+01`, with `prec` hexadecimal
/// digits after the point (`None`: as few as show the value exactly).
pub(super) fn hex(x: f64, prec: Option<usize>, upper: bool) -> String {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let mut frac = bits & ((1 << 52) - 1);
    let mut exp = biased - 1023;
    if biased == 0 {
        if frac == 0 {
            exp = 0;
        } else {
            // Subnormal: shift the leading one up to the implicit bit.
            exp = -1022;
            while frac & (1 << 52) == 0 {
                frac <<= 1;
                exp -= 1;
            }
            frac &= (1 << 52) - 1;
        }
    }
    // The leading digit is 1, except for zero; the 52 fraction bits are 13 hex digits.
    let mut lead = u64::from(frac != 0 || biased != 0);
    if let Some(p) = prec.filter(|p| *p < 13) {
        let drop = 52 - 4 * p as u32;
        let kept = frac >> drop;
        let rest = frac & ((1 << drop) - 1);
        let half = 1 << (drop - 1);
        let mut rounded = kept;
        // Round half to even.
        // The last digit kept is the leading one when no fraction digit is.
        let odd = if p == 0 { lead == 1 } else { kept & 1 == 1 };
        if rest > half || (rest == half && odd) {
            rounded += 1;
        }
        if rounded >> (4 * p) != 0 {
            // 1.fff… rounded up to 2: renormalize to 1.000… one power higher.
            rounded = 0;
            exp += 1;
            lead = 1;
        }
        frac = rounded << drop;
    }
    let digits = format!("{frac:013x}");
    let digits = match prec {
        None => digits.trim_end_matches('0').to_string(),
        Some(p) => format!("{digits:0<p$}").chars().take(p).collect(),
    };
    let mut out = String::new();
    if x.is_sign_negative() {
        out.push('-');
    }
    out.push_str(&format!("0x{lead}"));
    if !digits.is_empty() {
        out.push('.');
        out.push_str(&digits);
    }
    let sign = if exp < 0 { '-' } else { '+' };
    out.push_str(&format!("p{sign}{:02}", exp.unsigned_abs()));
    if upper { out.to_uppercase() } else { out }
}

/// `x` as Go's `%v` prints it.
pub(super) fn shortest(x: f64) -> String {
    format(x, 'g', None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layouts() {
        for (x, verb, prec, want) in [
            (1e6, 'g', None, "1e+06"),
            (100000.0, 'g', None, "100000"),
            (1.0, 'g', Some(3), "1"),
            (0.0, 'e', None, "0.000000e+00"),
            (2.5, 'f', None, "2.500000"),
            (0.5, 'f', Some(0), "0"),
            (123456789.0, 'g', None, "1.23456789e+08"),
            (1e-5, 'g', None, "1e-05"),
            (0.0001, 'g', None, "0.0001"),
            (1e-7, 'G', None, "1E-07"),
            (-1.0, 'e', Some(2), "-1.00e+00"),
            (0.0, 'g', None, "0"),
        ] {
            assert_eq!(format(x, verb, prec), want, "{x} {verb} {prec:?}");
        }
        assert_eq!(binary(1.0), "4503599627370496p-52");
        assert_eq!(binary(0.0), "0p-1074");
        assert_eq!(hex(3.0, None, false), "0x1.8p+01");
        assert_eq!(hex(1.0, Some(0), true), "0X1P+00");
        assert_eq!(hex(1.96875, Some(1), false), "0x1.0p+01");
        assert_eq!(hex(0.0, None, false), "0x0p+00");
    }
}
