//! Text for people: aligned tables, durations, times and member names.

use coop_model::{Day, MemberId, Minutes, State};

/// A table whose columns are padded to their widest cell.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a header row.
    pub(crate) fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether only the header is there.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    /// The table as lines; the last column is not padded.
    pub(crate) fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; cols];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Minutes as `-90 min (-1 h 30 min)`: the integer stays visible, hours for people.
pub(crate) fn minutes(m: Minutes) -> String {
    let m = m.0;
    with_hours(m, if m < 0 { "-" } else { "" })
}

/// A balance with an explicit sign: `+60 min (+1 h)`.
pub(crate) fn signed_minutes(m: Minutes) -> String {
    let m = m.0;
    with_hours(
        m,
        if m > 0 {
            "+"
        } else if m < 0 {
            "-"
        } else {
            ""
        },
    )
}

fn with_hours(m: i64, sign: &str) -> String {
    let a = m.unsigned_abs();
    match (a / 60, a % 60) {
        (0, _) => format!("{sign}{a} min"),
        (h, 0) => format!("{sign}{a} min ({sign}{h} h)"),
        (h, r) => format!("{sign}{a} min ({sign}{h} h {r} min)"),
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM` (UTC).
pub(crate) fn datetime(secs: i64) -> String {
    let day = Day::from_unix(secs);
    let rem = secs.rem_euclid(86_400);
    format!("{day} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

/// A member's display name, or their short id when the state does not know them.
pub(crate) fn name(state: &State, member: &MemberId) -> String {
    state
        .members
        .get(member)
        .map_or_else(|| member.short(), |m| m.display_name.clone())
}

/// Cuts text to `max` characters for a table cell.
pub(crate) fn clip(text: &str, max: usize) -> String {
    let flat = text.replace('\n', " ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut s: String = flat.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Minor units as `12.50 EUR` (a minus sign for negative amounts).
pub(crate) fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", a / 100, a % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(minutes(Minutes(0)), "0 min");
        assert_eq!(minutes(Minutes(45)), "45 min");
        assert_eq!(minutes(Minutes(180)), "180 min (3 h)");
        assert_eq!(minutes(Minutes(-90)), "-90 min (-1 h 30 min)");
        assert_eq!(signed_minutes(Minutes(60)), "+60 min (+1 h)");
        assert_eq!(signed_minutes(Minutes(30)), "+30 min");
        assert_eq!(signed_minutes(Minutes(-60)), "-60 min (-1 h)");
        assert_eq!(signed_minutes(Minutes(0)), "0 min");
    }

    #[test]
    fn tables_align_and_times_print_in_utc() {
        let mut t = Table::new(&["id", "name"]);
        t.row(vec!["a".into(), "Alice".into()]);
        t.row(vec!["bbbb".into(), "Bob".into()]);
        assert_eq!(t.render(), "id    name\na     Alice\nbbbb  Bob\n");
        assert_eq!(datetime(0), "1970-01-01 00:00");
        assert_eq!(datetime(86_400 + 3_660), "1970-01-02 01:01");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
