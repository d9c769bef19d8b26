//! Text to values: every parser that turns what a person typed into one of the model's values.
//!
//! The command line (`cli.rs`) names these as clap value parsers, so a malformed id, date,
//! amount or duration is a usage error (exit 2) before anything is opened, and the commands
//! receive values that need no second check. Each parser has one rule, written in its doc
//! comment, and fails with a one-line message; clap prefixes it with the flag and the value.

use std::str::FromStr;

use coop_model::record::money as show_money;
use coop_model::Day;

/// A text argument of `min..=max` characters without control characters (the ledger's
/// own limits, checked here so a mistake is a usage error and nothing is written).
pub(crate) fn text(min: usize, max: usize) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |s: &str| {
        let n = s.chars().count();
        if n < min || n > max {
            Err(format!("expected {min} to {max} characters, got {n}"))
        } else if s.chars().any(|c| c.is_control() && c != '\n') {
            Err("control characters are not allowed".into())
        } else {
            Ok(s.to_string())
        }
    }
}

/// A display name as a `rename` record takes it (docs/RULES.md R20), trimmed.
pub(crate) fn name(s: &str) -> Result<String, String> {
    let s = s.trim();
    coop_model::record::check_name(s).map_err(str::to_string)?;
    Ok(s.to_string())
}

/// One of a type's fixed words (`low|medium|high`, `yes|no|abstain`, a role, ...), through its
/// `FromStr`, whose error lists the words it takes.
pub(crate) fn keyword<T: FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

/// A parameter assignment `KEY=VALUE`, as `--param` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    /// The parameter's name, without surrounding spaces.
    pub(crate) key: String,
    /// Its value as typed (the model reads it).
    pub(crate) value: String,
}

/// `KEY=VALUE` naming a known parameter with a value it accepts (checked against the
/// defaults by the model's own `Params::assign`). The key is trimmed; the value is kept as
/// typed, as the model reads it.
pub(crate) fn param(s: &str) -> Result<Param, String> {
    coop_model::Params::default()
        .assign(s)
        .map_err(|e| e.to_string())?;
    // `assign` accepted it, so it holds a `=`.
    let (key, value) = s.split_once('=').unwrap_or((s, ""));
    Ok(Param {
        key: key.trim().to_string(),
        value: value.to_string(),
    })
}

/// A `YYYY-MM-DD` date within the years the ledger takes (1900 to 2199).
pub(crate) fn day(s: &str) -> Result<Day, String> {
    let day: Day = s
        .parse()
        .map_err(|e: coop_model::ids::ParseDayError| e.to_string())?;
    let (y, _, _) = day.ymd();
    if (1900..=2199).contains(&y) {
        Ok(day)
    } else {
        Err(format!("{day} is outside the years 1900 to 2199"))
    }
}

/// A relief reason: what `text(1, 500)` takes, and at most what a seal holds in bytes.
pub(crate) fn reason(s: &str) -> Result<String, String> {
    let t = text(1, 500)(s)?;
    if t.len() > coop_model::seal::MAX_TEXT_BYTES {
        return Err(format!(
            "{} bytes, at most {}",
            t.len(),
            coop_model::seal::MAX_TEXT_BYTES
        ));
    }
    Ok(t)
}

/// Money as typed, in major units, into minor units, within `min..=max` minor units.
///
/// The rule, the same for every amount of the command line: ASCII digits, optionally
/// followed by a `.` and one or two digits — `25`, `12.5`, `12.50`, `007.10` — read as text
/// into minor units (`2500`, `1250`, `1250`, `710`), never through a float. Nothing else: no
/// sign, no thousands separator (`1,000`), no exponent (`1e3`), no spaces, no empty side of
/// the point (`.5`, `12.`), no third decimal (`12.505`). Each flag gives its range: a unit
/// price may be `0` (at most `MAX_UNIT_PRICE`), a pool or relief amount starts at `0.01`
/// (at most `MAX_MONEY`); an amount beyond the range, however many digits it has, is
/// refused as out of range.
pub(crate) fn money(min: i64, max: i64) -> impl Fn(&str) -> Result<i64, String> + Clone {
    move |s: &str| {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (s.contains('.') && !digits(frac)) || frac.len() > 2 {
            return Err(format!(
                "{s:?} is not an amount: expected digits with at most two decimals, e.g. 25 or 12.50"
            ));
        }
        // Digits only from here, so the one way to fail is a number too large for i64, which
        // is out of every range.
        let cents: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
        let whole = whole.trim_start_matches('0');
        let whole = if whole.is_empty() {
            Some(0)
        } else {
            whole.parse::<i64>().ok()
        };
        let minor = whole.and_then(|w| w.checked_mul(100)?.checked_add(cents));
        match minor {
            Some(m) if (min..=max).contains(&m) => Ok(m),
            _ => Err(format!(
                "{s:?} is outside {} to {}",
                show_money(min),
                show_money(max)
            )),
        }
    }
}

/// A currency code: three upper-case ASCII letters (`EUR`).
pub(crate) fn currency(s: &str) -> Result<String, String> {
    if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a currency code like EUR (three upper-case letters)"
        ))
    }
}

/// A purchase round: a number from 0 to `MAX_PURCHASE_ROUNDS - 1`.
pub(crate) fn round(s: &str) -> Result<i64, String> {
    use coop_model::record::MAX_PURCHASE_ROUNDS;
    match s.parse::<i64>() {
        Ok(k) if (0..MAX_PURCHASE_ROUNDS).contains(&k) => Ok(k),
        _ => Err(format!(
            "expected a round number from 0 to {}",
            MAX_PURCHASE_ROUNDS - 1
        )),
    }
}

/// A moment in UTC, in Unix seconds: `YYYY-MM-DD` (its start), `YYYY-MM-DDTHH:MM[:SS]` with
/// an optional `Z`, or `@` and Unix seconds. Years 1970 to 2199.
pub(crate) fn time(s: &str) -> Result<i64, String> {
    let bad = || {
        format!("{s:?} is not a time: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (UTC) or @UNIX-SECONDS")
    };
    if let Some(secs) = s.strip_prefix('@') {
        let t: i64 = secs.parse().map_err(|_| bad())?;
        return if (1..coop_model::record::MAX_DEADLINE).contains(&t) {
            Ok(t)
        } else {
            Err(bad())
        };
    }
    let (date, time) = s.split_once('T').unwrap_or((s, ""));
    let day = day(date)?;
    if day.0 < 0 {
        return Err(format!("{day} is before 1970"));
    }
    let time = time.strip_suffix('Z').unwrap_or(time);
    let mut secs = 0;
    if !time.is_empty() {
        let parts: Vec<&str> = time.split(':').collect();
        let ok = (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(bad());
        }
        let n: Vec<i64> = parts.iter().map(|p| p.parse().unwrap_or(99)).collect();
        let (h, m, sec) = (n[0], n[1], n.get(2).copied().unwrap_or(0));
        if h > 23 || m > 59 || sec > 59 {
            return Err(bad());
        }
        secs = h * 3600 + m * 60 + sec;
    }
    Ok(day.0 as i64 * 86_400 + secs)
}

/// A voting window in seconds: a whole number and a unit, `d`, `h` or `m` (`7d`, `36h`,
/// `90m`), from 1 minute to 366 days. Surrounding spaces are ignored.
pub(crate) fn window(s: &str) -> Result<i64, String> {
    let bad = || format!("expected a duration such as 7d, 36h or 90m, got {s:?}");
    let s = s.trim();
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        _ => None,
    }
    .ok_or_else(bad)?;
    if secs <= 0 || secs > coop_model::state::MAX_WINDOW_SECS {
        return Err(format!(
            "the window must be between 1 minute and 366 days, got {s:?}"
        ));
    }
    Ok(secs)
}

/// The `COOP_NOW` override of the clock: Unix seconds from 0 to the end of year 9999,
/// surrounding spaces ignored.
pub(crate) fn unix_seconds(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .ok()
        .filter(|t| (0..=253_402_300_799).contains(t))
        .ok_or_else(|| format!("{s:?} is not Unix seconds"))
}

/// A record kind, one of the kinds the ledger knows (listed in `--help`).
pub(crate) fn kind() -> impl clap::builder::TypedValueParser<Value = coop_model::Kind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(coop_model::Kind::ALL.iter().map(|k| k.as_str()))
        .try_map(|s| s.parse::<coop_model::Kind>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coop_model::record::{Urgency, MAX_MONEY, MAX_UNIT_PRICE};

    #[test]
    fn money_is_digits_with_at_most_two_decimals_read_into_minor_units() {
        let pool = money(1, MAX_MONEY);
        let price = money(0, MAX_UNIT_PRICE);
        for (text, minor) in [
            ("25", 2500),
            ("12", 1200),
            ("12.5", 1250),
            ("12.50", 1250),
            ("0.01", 1),
            ("0.07", 7),
            ("007.10", 710),
            ("0000000000001", 100),
            ("10000000000", MAX_MONEY),
        ] {
            assert_eq!(pool(text), Ok(minor), "{text}");
        }
        assert_eq!(price("0"), Ok(0));
        assert_eq!(price("0.00"), Ok(0));
        assert_eq!(price("1000000"), Ok(MAX_UNIT_PRICE));
        for bad in [
            "", ".", "1.", ".5", "12.505", "-1", "-3", "+3", "1,000", "1,50", "1e3", "abc", " 12",
            "12 ", "1 000", "١٢", "12.5.0",
        ] {
            let err = pool(bad).unwrap_err();
            assert!(err.contains("is not an amount"), "{bad:?}: {err}");
            assert!(price(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn money_out_of_its_range_says_the_range() {
        let pool = money(1, MAX_MONEY);
        let price = money(0, MAX_UNIT_PRICE);
        for bad in ["0", "0.00", "10000000000.01", "99999999999999999999"] {
            let err = pool(bad).unwrap_err();
            assert_eq!(
                err,
                format!("{bad:?} is outside 0.01 to 10000000000.00"),
                "{bad:?}"
            );
        }
        assert_eq!(
            price("1000000.01"),
            Err(r#""1000000.01" is outside 0.00 to 1000000.00"#.to_string())
        );
    }

    #[test]
    fn times_parse_as_utc() {
        assert_eq!(time("1970-01-02"), Ok(86_400));
        assert_eq!(time("1970-01-02T01:01"), Ok(86_400 + 3_660));
        assert_eq!(time("1970-01-02T01:01:05Z"), Ok(86_400 + 3_665));
        assert_eq!(time("@1790000000"), Ok(1_790_000_000));
        for bad in [
            "2026-13-01",
            "2026-10-01T24:00",
            "2026-10-01T9:00",
            "1969-12-31",
            "@x",
            "@0",
            "tomorrow",
        ] {
            assert!(time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn days_are_dates_from_1900_to_2199() {
        assert_eq!(
            day("2026-03-01").map(|d| d.to_string()),
            Ok("2026-03-01".into())
        );
        for bad in ["1899-12-31", "2200-01-01", "2026-02-30", "2026-3", "soon"] {
            assert!(day(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_are_a_number_and_a_unit() {
        assert_eq!(window("7d"), Ok(7 * 86_400));
        assert_eq!(window("36h"), Ok(36 * 3_600));
        assert_eq!(window(" 90m "), Ok(90 * 60));
        assert_eq!(window("366d"), Ok(366 * 86_400));
        for bad in [
            "",
            "7",
            "d",
            "0m",
            "-1h",
            "367d",
            "7w",
            "1.5h",
            "99999999999999999d",
        ] {
            assert!(window(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn params_are_a_known_key_and_an_accepted_value() {
        assert_eq!(
            param(" sp_budget =120"),
            Ok(Param {
                key: "sp_budget".into(),
                value: "120".into()
            })
        );
        for bad in ["sp_budget", "no_such_key=1", "sp_budget=lots"] {
            assert!(param(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn currencies_rounds_and_keywords() {
        assert_eq!(currency("EUR"), Ok("EUR".into()));
        for bad in ["eur", "EURO", "E1R", ""] {
            assert!(currency(bad).is_err(), "{bad:?}");
        }
        assert_eq!(round("0"), Ok(0));
        assert!(round("-1").is_err());
        assert!(round(&coop_model::record::MAX_PURCHASE_ROUNDS.to_string()).is_err());
        assert_eq!(keyword::<Urgency>("high"), Ok(Urgency::High));
        assert!(keyword::<Urgency>("urgent").is_err());
    }

    #[test]
    fn text_counts_characters_and_refuses_control_characters_and_reasons_fit_a_seal() {
        let t = text(1, 3);
        assert_eq!(t("äöü"), Ok("äöü".into()));
        assert_eq!(t("a\nb"), Ok("a\nb".into()));
        for bad in ["", "abcd", "a\tb", "\u{7}"] {
            assert!(t(bad).is_err(), "{bad:?}");
        }
        // A reason is sealed: 500 characters, and no more bytes than a seal holds.
        assert!(reason(&"é".repeat(500)).is_ok());
        assert!(reason(&"€".repeat(500)).is_err());
        assert!(reason(&"a".repeat(501)).is_err());
    }

    #[test]
    fn coop_now_is_unix_seconds() {
        assert_eq!(unix_seconds(" 1790000000\n"), Ok(1_790_000_000));
        for bad in ["", "-1", "now", "253402300800"] {
            assert!(unix_seconds(bad).is_err(), "{bad:?}");
        }
    }
}
