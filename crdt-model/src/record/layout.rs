//! The Automerge layout of one record: scalar fields, and the codecs that turn a record's
//! typed fields into them and back.
//!
//! Each record kind declares its layout once, with `record_layout!`: the field
//! names, their Rust types and their codecs. Encoding ([`Layout::fields`]) and decoding
//! ([`Layout::from_fields`]) both follow from that one declaration, so they cannot drift
//! apart. The rules of the layout itself are in docs/PROTOCOL.md ("Layout v1").

use std::collections::BTreeMap;

use crate::ids::{Day, MemberId, Minutes, Points, RecordId};
use crate::terms::TextEnum;

/// A scalar field value in the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Str(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl Field {
    pub(crate) fn into_scalar(self) -> automerge::ScalarValue {
        match self {
            Field::Str(s) => automerge::ScalarValue::Str(s.into()),
            Field::Int(i) => automerge::ScalarValue::Int(i),
            Field::Bytes(b) => automerge::ScalarValue::Bytes(b),
        }
    }
}

/// Why the fields of a change are not a valid record. Carried as the detail of the gate's
/// `invalid_record` refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The `v` field names a layout this build does not know.
    #[error("unsupported layout version {0}")]
    Version(i64),
    /// The root key names no record kind.
    #[error("unknown record kind {0:?}")]
    UnknownKind(String),
    /// A required field is absent.
    #[error("missing field {0:?}")]
    Missing(&'static str),
    /// A field the kind does not have.
    #[error("unexpected field {0:?}")]
    Unexpected(String),
    /// A field holds the wrong scalar type.
    #[error("field {field:?} is not {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it should be: `text`, `an integer`, `bytes`.
        expected: &'static str,
    },
    /// Text of the wrong length.
    #[error("field {field:?} has {len} characters, expected {min}..={max}")]
    TextLength {
        /// The field.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The least allowed.
        min: usize,
        /// The most allowed.
        max: usize,
    },
    /// Text with control characters other than newline.
    #[error("field {0:?} contains control characters")]
    ControlCharacters(&'static str),
    /// An integer outside its range.
    #[error("field {field:?} is {value}, expected {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value written.
        value: i64,
        /// The least allowed.
        min: i64,
        /// The most allowed.
        max: i64,
    },
    /// Bytes of the wrong length.
    #[error("field {field:?} has {len} bytes, expected {expected}")]
    ByteLength {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The length required.
        expected: usize,
    },
    /// Bytes over their cap.
    #[error("field {field:?} has {len} bytes, at most {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A field whose value the kind's own check refuses (a word outside its set, a
    /// currency code, a parameter value, a sealed blob's header).
    #[error("{reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why, for people (names the field).
        reason: String,
    },
}

/// A record kind's layout: its kind name and its fields. Implemented by `record_layout!`.
pub(crate) trait Layout: Sized {
    /// The kind: the first segment of the root key.
    const KIND: &'static str;
    /// Appends the record's fields (without the version field `v`).
    fn put_fields(&self, out: &mut Vec<(&'static str, Field)>);
    /// Reads and validates the record from its fields (the version already checked).
    fn from_fields(f: &Fields<'_>) -> Result<Self, RecordError>;
}

/// A boxed record kind (see `Record`) has its kind's layout.
impl<T: Layout> Layout for Box<T> {
    const KIND: &'static str = T::KIND;
    fn put_fields(&self, out: &mut Vec<(&'static str, Field)>) {
        (**self).put_fields(out)
    }
    fn from_fields(f: &Fields<'_>) -> Result<Self, RecordError> {
        T::from_fields(f).map(Box::new)
    }
}

/// The fields of one change, as the gate read them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a>(pub(crate) &'a BTreeMap<String, Field>);

impl Fields<'_> {
    pub(crate) fn get(&self, k: &'static str) -> Option<&Field> {
        self.0.get(k)
    }
    fn need(&self, k: &'static str) -> Result<&Field, RecordError> {
        self.get(k).ok_or(RecordError::Missing(k))
    }
    pub(crate) fn int(&self, k: &'static str) -> Result<i64, RecordError> {
        match self.need(k)? {
            Field::Int(i) => Ok(*i),
            _ => Err(RecordError::WrongType {
                field: k,
                expected: "an integer",
            }),
        }
    }
    pub(crate) fn text(&self, k: &'static str) -> Result<&str, RecordError> {
        match self.need(k)? {
            Field::Str(s) => Ok(s),
            _ => Err(RecordError::WrongType {
                field: k,
                expected: "text",
            }),
        }
    }
    fn bytes(&self, k: &'static str) -> Result<&[u8], RecordError> {
        match self.need(k)? {
            Field::Bytes(b) => Ok(b),
            _ => Err(RecordError::WrongType {
                field: k,
                expected: "bytes",
            }),
        }
    }
}

/// How one typed field is written to and read from the layout. A codec is a small value
/// (`Text(1, 100)`, `Int(1, 1440)`) that carries the field's valid range.
pub(crate) trait Codec<T> {
    /// Appends the field (nothing for an absent optional field).
    fn put(&self, name: &'static str, value: &T, out: &mut Vec<(&'static str, Field)>);
    /// Reads and validates the field.
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<T, RecordError>;
}

/// Text of `min..=max` characters, no control characters but newline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text(pub(crate) usize, pub(crate) usize);

impl Text {
    pub(crate) fn check(&self, name: &'static str, s: &str) -> Result<(), RecordError> {
        let n = s.chars().count();
        if n < self.0 || n > self.1 {
            return Err(RecordError::TextLength {
                field: name,
                len: n,
                min: self.0,
                max: self.1,
            });
        }
        if s.chars().any(|c| c.is_control() && c != '\n') {
            return Err(RecordError::ControlCharacters(name));
        }
        Ok(())
    }
}

impl Codec<String> for Text {
    fn put(&self, name: &'static str, v: &String, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Str(v.clone())));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<String, RecordError> {
        let s = f.text(name)?;
        self.check(name, s)?;
        Ok(s.to_string())
    }
}

/// An integer in `min..=max`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Int(pub(crate) i64, pub(crate) i64);

impl Int {
    fn range(&self, name: &'static str, f: &Fields<'_>) -> Result<i64, RecordError> {
        let v = f.int(name)?;
        if (self.0..=self.1).contains(&v) {
            Ok(v)
        } else {
            Err(RecordError::OutOfRange {
                field: name,
                value: v,
                min: self.0,
                max: self.1,
            })
        }
    }
}

impl Codec<i64> for Int {
    fn put(&self, name: &'static str, v: &i64, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Int(*v)));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<i64, RecordError> {
        self.range(name, f)
    }
}

impl Codec<Minutes> for Int {
    fn put(&self, name: &'static str, v: &Minutes, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Int(v.0)));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<Minutes, RecordError> {
        self.range(name, f).map(Minutes)
    }
}

impl Codec<Points> for Int {
    fn put(&self, name: &'static str, v: &Points, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Int(v.0)));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<Points, RecordError> {
        self.range(name, f).map(Points)
    }
}

/// A flag stored as the integer 0 or 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag;

impl Codec<bool> for Flag {
    fn put(&self, name: &'static str, v: &bool, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Int(i64::from(*v))));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<bool, RecordError> {
        Int(0, 1).range(name, f).map(|v| v == 1)
    }
}

/// A calendar day, stored as days since 1970-01-01; years 1900..=2200 are plenty for a
/// ledger of services.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Date;

impl Codec<Day> for Date {
    fn put(&self, name: &'static str, v: &Day, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Int(i64::from(v.0))));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<Day, RecordError> {
        let d = f.int(name)?;
        if !(-25_567..=84_006).contains(&d) {
            return Err(RecordError::Invalid {
                field: name,
                reason: format!("field {name:?} is not a plausible date"),
            });
        }
        Ok(Day(d as i32))
    }
}

/// Exactly `N` bytes: ids, keys, signatures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw;

fn fixed<const N: usize>(f: &Fields<'_>, name: &'static str) -> Result<[u8; N], RecordError> {
    let b = f.bytes(name)?;
    b.try_into().map_err(|_| RecordError::ByteLength {
        field: name,
        len: b.len(),
        expected: N,
    })
}

impl<const N: usize> Codec<[u8; N]> for Raw {
    fn put(&self, name: &'static str, v: &[u8; N], out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Bytes(v.to_vec())));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<[u8; N], RecordError> {
        fixed(f, name)
    }
}

impl Codec<MemberId> for Raw {
    fn put(&self, name: &'static str, v: &MemberId, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Bytes(v.0.to_vec())));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<MemberId, RecordError> {
        fixed(f, name).map(MemberId)
    }
}

impl Codec<crate::ids::DeviceId> for Raw {
    fn put(
        &self,
        name: &'static str,
        v: &crate::ids::DeviceId,
        out: &mut Vec<(&'static str, Field)>,
    ) {
        out.push((name, Field::Bytes(v.0.to_vec())));
    }
    fn take(
        &self,
        f: &Fields<'_>,
        name: &'static str,
    ) -> Result<crate::ids::DeviceId, RecordError> {
        fixed(f, name).map(crate::ids::DeviceId)
    }
}

impl Codec<RecordId> for Raw {
    fn put(&self, name: &'static str, v: &RecordId, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Bytes(v.0.to_vec())));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<RecordId, RecordError> {
        fixed(f, name).map(RecordId)
    }
}

/// At most `max` bytes of opaque data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blob(pub(crate) usize);

impl Codec<Vec<u8>> for Blob {
    fn put(&self, name: &'static str, v: &Vec<u8>, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Bytes(v.clone())));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<Vec<u8>, RecordError> {
        let b = f.bytes(name)?;
        if b.len() > self.0 {
            return Err(RecordError::TooLong {
                field: name,
                len: b.len(),
                max: self.0,
            });
        }
        Ok(b.to_vec())
    }
}

/// A word from a fixed set, stored as text ([`TextEnum`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Word;

impl<T: TextEnum> Codec<T> for Word {
    fn put(&self, name: &'static str, v: &T, out: &mut Vec<(&'static str, Field)>) {
        out.push((name, Field::Str(v.as_str().into())));
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<T, RecordError> {
        let s = f.text(name)?;
        T::from_word(s).ok_or_else(|| RecordError::Invalid {
            field: name,
            reason: format!(
                "field {name:?} is {s:?}, expected one of: {}",
                T::WORDS.join(", ")
            ),
        })
    }
}

/// An optional field: absent when `None`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opt<C>(pub(crate) C);

impl<T, C: Codec<T>> Codec<Option<T>> for Opt<C> {
    fn put(&self, name: &'static str, v: &Option<T>, out: &mut Vec<(&'static str, Field)>) {
        if let Some(v) = v {
            self.0.put(name, v, out);
        }
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<Option<T>, RecordError> {
        if f.get(name).is_some() {
            self.0.take(f, name).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Money in minor units, `1..=MAX_MONEY`.
pub(crate) const MONEY: Int = Int(1, crate::terms::MAX_MONEY);

/// A currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Currency;

impl Codec<String> for Currency {
    fn put(&self, name: &'static str, v: &String, out: &mut Vec<(&'static str, Field)>) {
        Text(3, 3).put(name, v, out)
    }
    fn take(&self, f: &Fields<'_>, name: &'static str) -> Result<String, RecordError> {
        let s = Text(3, 3).take(f, name)?;
        if !s.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(RecordError::Invalid {
                field: name,
                reason: format!("currency {s:?} is not three upper-case letters"),
            });
        }
        Ok(s)
    }
}

/// Declares a record kind: its struct (public fields, serde as the CLI's JSON shows it)
/// and its [`Layout`], from one list of `field: Type = Codec`.
macro_rules! record_layout {
    (
        $(#[$meta:meta])*
        $kind:literal => pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $codec:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::record::layout::Layout for $name {
            const KIND: &'static str = $kind;
            #[allow(unused_variables)]
            fn put_fields(&self, out: &mut Vec<(&'static str, $crate::record::layout::Field)>) {
                $( $crate::record::layout::Codec::<$ty>::put(&$codec, stringify!($field), &self.$field, out); )*
            }
            #[allow(unused_variables)]
            fn from_fields(
                f: &$crate::record::layout::Fields<'_>,
            ) -> Result<Self, $crate::record::layout::RecordError> {
                Ok($name {
                    $( $field: $crate::record::layout::Codec::<$ty>::take(&$codec, f, stringify!($field))?, )*
                })
            }
        }
    };
}
pub(crate) use record_layout;
