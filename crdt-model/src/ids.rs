//! Identifier and amount newtypes: parse at the edge, never re-validate inside.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Error for a string that is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {what}: expected 64 hex characters")]
pub struct ParseIdError {
    what: &'static str,
}

macro_rules! id32 {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// Lower-case hex, the one stable text form.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The first 12 hex characters, for people.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..6])
            }
            /// Parses the 64-character hex form.
            pub fn from_hex(s: &str) -> Result<Self, ParseIdError> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s.trim(), &mut out)
                    .map_err(|_| ParseIdError { what: $what })?;
                Ok(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id32!(
    /// A member: the public half of their long-term ed25519 identity key.
    MemberId,
    "member id"
);
id32!(
    /// A device: the public half of its ed25519 device key, also its Automerge actor id.
    DeviceId,
    "device id"
);
id32!(
    /// A community: the change hash of its genesis change.
    CommunityId,
    "community id"
);
id32!(
    /// An Automerge document of a community.
    DocId,
    "document id"
);
id32!(
    /// A record: the hash of the Automerge change that carries it.
    RecordId,
    "record id"
);

impl RecordId {
    /// The Automerge change hash this record id is.
    pub fn change_hash(&self) -> automerge::ChangeHash {
        automerge::ChangeHash(self.0)
    }
}

impl From<automerge::ChangeHash> for RecordId {
    fn from(h: automerge::ChangeHash) -> Self {
        RecordId(h.0)
    }
}

impl DocId {
    /// The community's one ledger document.
    pub fn ledger(community: &CommunityId) -> DocId {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"coop/doc/v1/ledger");
        h.update(community.0);
        DocId(h.finalize().into())
    }
}

impl DeviceId {
    /// The Automerge actor id of this device.
    pub fn actor(&self) -> automerge::ActorId {
        automerge::ActorId::from(self.0)
    }
}

/// Time in whole minutes (signed: balances go negative).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Minutes(pub i64);

/// Whole Support Points.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Points(pub i64);

/// Integer arithmetic and display for an amount newtype: sums and differences of the same
/// unit, scaling by a plain integer, shown as the bare number.
macro_rules! amount {
    ($t:ident) => {
        impl std::ops::Add for $t {
            type Output = $t;
            fn add(self, o: $t) -> $t {
                $t(self.0 + o.0)
            }
        }
        impl std::ops::Sub for $t {
            type Output = $t;
            fn sub(self, o: $t) -> $t {
                $t(self.0 - o.0)
            }
        }
        impl std::ops::Neg for $t {
            type Output = $t;
            fn neg(self) -> $t {
                $t(-self.0)
            }
        }
        impl std::ops::AddAssign for $t {
            fn add_assign(&mut self, o: $t) {
                self.0 += o.0;
            }
        }
        impl std::ops::SubAssign for $t {
            fn sub_assign(&mut self, o: $t) {
                self.0 -= o.0;
            }
        }
        impl std::iter::Sum for $t {
            fn sum<I: Iterator<Item = $t>>(it: I) -> $t {
                $t(it.map(|x| x.0).sum())
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
amount!(Minutes);
amount!(Points);

/// A calendar day, counted from 1970-01-01 (proleptic Gregorian). Serialized as `YYYY-MM-DD`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

impl Day {
    /// The day that contains the given Unix time (seconds).
    pub fn from_unix(secs: i64) -> Day {
        Day(secs.div_euclid(86_400) as i32)
    }

    /// Builds a day from a calendar date, if it exists.
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Day> {
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let mp = (m as i32 + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d as i32 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Day(era * 146_097 + doe - 719_468))
    }

    /// The calendar date of this day.
    pub fn ymd(&self) -> (i32, u32, u32) {
        let z = self.0 + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Error for a string that is not a `YYYY-MM-DD` date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid date {0:?}: expected YYYY-MM-DD")]
pub struct ParseDayError(String);

impl FromStr for Day {
    type Err = ParseDayError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDayError(s.to_string());
        let mut parts = s.trim().splitn(3, '-');
        let y = parts.next().and_then(|p| p.parse().ok()).ok_or_else(err)?;
        let m = parts.next().and_then(|p| p.parse().ok()).ok_or_else(err)?;
        let d = parts.next().and_then(|p| p.parse().ok()).ok_or_else(err)?;
        Day::from_ymd(y, m, d).ok_or_else(err)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Day({self})")
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde for fixed-size byte arrays as hex strings.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        b: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// Serde for byte vectors as hex strings.
pub(crate) mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_through_the_calendar() {
        assert_eq!(Day::from_ymd(1970, 1, 1), Some(Day(0)));
        assert_eq!(
            Day::from_ymd(2000, 3, 1).map(|d| d.to_string()).as_deref(),
            Some("2000-03-01")
        );
        for n in [-800_000, -1, 0, 59, 60, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = Day(n).ymd();
            assert_eq!(Day::from_ymd(y, m, d), Some(Day(n)), "day {n}");
        }
        assert!("2026-02-29".parse::<Day>().is_err());
        assert_eq!(
            "2024-02-29"
                .parse::<Day>()
                .map(|d| d.to_string())
                .as_deref(),
            Ok("2024-02-29")
        );
        assert!("yesterday".parse::<Day>().is_err());
    }

    #[test]
    fn ids_print_and_parse_in_one_form() {
        let id = MemberId([0xab; 32]);
        assert_eq!(id.to_hex().len(), 64);
        assert_eq!(id.to_hex().parse::<MemberId>(), Ok(id));
        assert_eq!(id.short(), "abababababab");
        assert!("xyz".parse::<MemberId>().is_err());
    }
}
