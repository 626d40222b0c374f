//! What a serde value is at its top level — `None`, an integer, bytes, or
//! anything else — found by a serializer that stops at the first level
//! (looking through newtypes, and through `Some` for a value inside it).

use serde::ser::{self, Impossible, Serialize};

/// The top-level shape of a value.
#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub(crate) enum Shape {
    /// `None` (an `Option::None`, also behind newtypes; `Some(None)` is not).
    None,
    Int(i128),
    UInt(u128),
    /// Bytes (serde's `serialize_bytes`); empty unless asked to keep them.
    Bytes(Vec<u8>),
    Other,
}

/// The shape of `value`; bytes are copied out only when `keep_bytes`.
pub(crate) fn shape<T: Serialize + ?Sized>(value: &T, keep_bytes: bool) -> Shape {
    value
        .serialize(Probe { keep_bytes })
        .unwrap_or(Shape::Other)
}

#[derive(Clone, Copy)]
struct Probe {
    keep_bytes: bool,
}

/// Stops the probe at a compound value.
#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a compound value")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

type Probed = Result<Shape, Stop>;

macro_rules! integers {
    ($($method:ident: $t:ty => $variant:ident),* $(,)?) => {$(
        fn $method(self, v: $t) -> Probed {
            Ok(Shape::$variant(v.into()))
        }
    )*};
}

macro_rules! others {
    ($($method:ident($($arg:ty),*);)*) => {$(
        fn $method(self, $(_: $arg),*) -> Probed {
            Ok(Shape::Other)
        }
    )*};
}

macro_rules! compounds {
    ($($method:ident($($arg:ty),*) -> $kind:ident;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<Self::$kind, Stop> {
            Err(Stop)
        }
    )*};
}

impl ser::Serializer for Probe {
    type Ok = Shape;
    type Error = Stop;
    type SerializeSeq = Impossible<Shape, Stop>;
    type SerializeTuple = Impossible<Shape, Stop>;
    type SerializeTupleStruct = Impossible<Shape, Stop>;
    type SerializeTupleVariant = Impossible<Shape, Stop>;
    type SerializeMap = Impossible<Shape, Stop>;
    type SerializeStruct = Impossible<Shape, Stop>;
    type SerializeStructVariant = Impossible<Shape, Stop>;

    integers!(
        serialize_i8: i8 => Int, serialize_i16: i16 => Int, serialize_i32: i32 => Int,
        serialize_i64: i64 => Int, serialize_i128: i128 => Int,
        serialize_u8: u8 => UInt, serialize_u16: u16 => UInt, serialize_u32: u32 => UInt,
        serialize_u64: u64 => UInt, serialize_u128: u128 => UInt,
    );
    others! {
        serialize_bool(bool); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_str(&str); serialize_unit(); serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }
    compounds! {
        serialize_seq(Option<usize>) -> SerializeSeq;
        serialize_tuple(usize) -> SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant;
        serialize_map(Option<usize>) -> SerializeMap;
        serialize_struct(&'static str, usize) -> SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant;
    }

    fn serialize_none(self) -> Probed {
        Ok(Shape::None)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Probed {
        match value.serialize(self)? {
            Shape::None => Ok(Shape::Other),
            shape => Ok(shape),
        }
    }

    fn serialize_bytes(self, v: &[u8]) -> Probed {
        Ok(Shape::Bytes(if self.keep_bytes {
            v.to_vec()
        } else {
            Vec::new()
        }))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Probed {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Probed {
        Ok(Shape::Other)
    }
}
