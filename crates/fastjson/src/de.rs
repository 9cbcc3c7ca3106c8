//! The serde `Deserializer` over [`Deserializer`]: every `deserialize_*`
//! hint, and the sequence, map, enum and map-key accessors, driving visitors
//! with the calls serde_json makes.

use serde::de::{self, DeserializeSeed, Visitor};

use crate::error::*;
use crate::parse::*;
use crate::scan::*;

macro_rules! forward_number {
    ($($method:ident)*) => {
        $(
            #[inline]
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                self.deserialize_number(visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'"') => {
                self.pos += 1;
                match self.parse_str()? {
                    Str::Borrowed(s) => visitor.visit_borrowed_str(s),
                    Str::Copied(s) => visitor.visit_str(s),
                }
            }
            Some(b'{') => self.visit_object(visitor),
            Some(b'[') => self.visit_array(visitor),
            Some(b'-' | b'0'..=b'9') => self.parse_number()?.visit(visitor),
            Some(b'n') => {
                self.parse_ident(b"null")?;
                visitor.visit_unit()
            }
            Some(b't') => {
                self.parse_ident(b"true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.parse_ident(b"false")?;
                visitor.visit_bool(false)
            }
            Some(_) => Err(self.error(EXPECTED_VALUE)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b't') => {
                self.parse_ident(b"true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.parse_ident(b"false")?;
                visitor.visit_bool(false)
            }
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    forward_number! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i128_any(visitor)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_u128_any(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'"') => {
                self.pos += 1;
                match self.parse_str()? {
                    Str::Borrowed(s) => visitor.visit_borrowed_str(s),
                    Str::Copied(s) => visitor.visit_str(s),
                }
            }
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'"') => {
                self.pos += 1;
                match self.parse_str_bytes(false)? {
                    Some(b) => visitor.visit_borrowed_bytes(b),
                    None => visitor.visit_bytes(&self.scratch),
                }
            }
            Some(b'[') => self.visit_array(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'n') => {
                self.parse_ident(b"null")?;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'n') => {
                self.parse_ident(b"null")?;
                visitor.visit_unit()
            }
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'[') => self.visit_array(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'{') => self.visit_object(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'{') => self.visit_object(visitor),
            Some(b'[') => self.visit_array(visitor),
            Some(_) => Err(self.invalid_type(&visitor)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.parse_ws() {
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let ret = visitor.visit_enum(VariantAccess { de: self });
                self.remaining_depth += 1;
                let value = ret?;
                match self.parse_ws() {
                    Some(b'}') => {
                        self.pos += 1;
                        Ok(value)
                    }
                    Some(_) => Err(self.error(EXPECTED_VALUE)),
                    None => Err(self.error(EOF_OBJECT)),
                }
            }
            Some(b'"') => visitor.visit_enum(UnitVariantAccess { de: self }),
            Some(_) => Err(self.error(EXPECTED_VALUE)),
            None => Err(self.error(EOF_VALUE)),
        }
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match skip_value(self.input, self.pos, &mut self.frames, &mut self.specials) {
            Ok(end) => {
                self.pos = end;
                visitor.visit_unit()
            }
            Err(ScanError(message, at)) => {
                self.pos = at.min(self.input.len());
                Err(Error::syntax(message, at))
            }
        }
    }
}

pub(crate) struct SeqAccess<'a, 'de> {
    pub(crate) de: &'a mut Deserializer<'de>,
    pub(crate) first: bool,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let de = &mut *self.de;
        match de.parse_ws() {
            Some(b']') => return Ok(None),
            Some(_) if self.first => self.first = false,
            Some(b',') => {
                de.pos += 1;
                match de.parse_ws() {
                    Some(b']') => return Err(de.error(TRAILING_COMMA)),
                    Some(_) => {}
                    None => return Err(de.error(EOF_VALUE)),
                }
            }
            Some(_) => return Err(de.error(EXPECTED_LIST_COMMA_OR_END)),
            None => return Err(de.error(EOF_LIST)),
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

pub(crate) struct MapAccess<'a, 'de> {
    pub(crate) de: &'a mut Deserializer<'de>,
    pub(crate) first: bool,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let de = &mut *self.de;
        match de.parse_ws() {
            Some(b'}') => return Ok(None),
            Some(b'"') if self.first => self.first = false,
            Some(_) if self.first => return Err(de.error(KEY_MUST_BE_STRING)),
            Some(b',') => {
                de.pos += 1;
                match de.parse_ws() {
                    Some(b'"') => {}
                    Some(b'}') => return Err(de.error(TRAILING_COMMA)),
                    Some(_) => return Err(de.error(KEY_MUST_BE_STRING)),
                    None => return Err(de.error(EOF_VALUE)),
                }
            }
            Some(_) => return Err(de.error(EXPECTED_OBJECT_COMMA_OR_END)),
            None => return Err(de.error(EOF_OBJECT)),
        }
        seed.deserialize(MapKey { de: &mut *self.de }).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.de.parse_object_colon()?;
        seed.deserialize(&mut *self.de)
    }
}

/// `{"Variant": value}`.
pub(crate) struct VariantAccess<'a, 'de> {
    pub(crate) de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        match self.de.parse_ws() {
            Some(b'"') => {}
            Some(b'}') => return Err(self.de.error(EXPECTED_VALUE)),
            Some(_) => return Err(self.de.error(KEY_MUST_BE_STRING)),
            None => return Err(self.de.error(EOF_OBJECT)),
        }
        let value = seed.deserialize(MapKey { de: &mut *self.de })?;
        self.de.parse_object_colon()?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_struct(self.de, "", fields, visitor)
    }
}

/// `"Variant"`.
pub(crate) struct UnitVariantAccess<'a, 'de> {
    pub(crate) de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = seed.deserialize(&mut *self.de)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"newtype variant",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(de::Error::invalid_type(
            de::Unexpected::UnitVariant,
            &"struct variant",
        ))
    }
}

/// An object key, positioned at its opening quote. Keys are always decoded
/// as text (numbers and booleans inside the quotes for those hints), as in
/// serde_json.
pub(crate) struct MapKey<'a, 'de> {
    pub(crate) de: &'a mut Deserializer<'de>,
}

impl<'de> MapKey<'_, 'de> {
    /// A number inside quotes: `"12"`.
    fn quoted<V: Visitor<'de>>(
        self,
        visitor: V,
        parse: fn(&mut Deserializer<'de>, V) -> Result<V::Value>,
    ) -> Result<V::Value> {
        let de = self.de;
        de.pos += 1;
        match de.peek() {
            Some(b'0'..=b'9' | b'-') => {}
            _ => return Err(de.error(EXPECTED_NUMERIC_KEY)),
        }
        let value = parse(de, visitor)?;
        match de.peek() {
            Some(b'"') => de.pos += 1,
            _ => return Err(de.error(EXPECTED_QUOTE)),
        }
        Ok(value)
    }
}

macro_rules! quoted_number {
    ($($method:ident => $parse:ident,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                self.quoted(visitor, Deserializer::$parse)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for MapKey<'_, 'de> {
    type Error = Error;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.pos += 1;
        match self.de.parse_str()? {
            Str::Borrowed(s) => visitor.visit_borrowed_str(s),
            Str::Copied(s) => visitor.visit_str(s),
        }
    }

    quoted_number! {
        deserialize_i8 => deserialize_number,
        deserialize_i16 => deserialize_number,
        deserialize_i32 => deserialize_number,
        deserialize_i64 => deserialize_number,
        deserialize_i128 => deserialize_i128_any,
        deserialize_u8 => deserialize_number,
        deserialize_u16 => deserialize_number,
        deserialize_u32 => deserialize_number,
        deserialize_u64 => deserialize_number,
        deserialize_u128 => deserialize_u128_any,
        deserialize_f32 => deserialize_number,
        deserialize_f64 => deserialize_number,
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let de = self.de;
        de.pos += 1;
        match de.peek() {
            Some(b't') => {
                de.parse_ident(b"true\"")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                de.parse_ident(b"false\"")?;
                visitor.visit_bool(false)
            }
            Some(_) => {
                de.parse_str()?;
                Err(de.invalid_type(&visitor))
            }
            None => Err(de.error(EOF_VALUE)),
        }
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_enum(self.de, name, variants, visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_bytes(self.de, visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_bytes(self.de, visitor)
    }

    serde::forward_to_deserialize_any! {
        char str string unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}
