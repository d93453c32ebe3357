//! A YAML value that keeps the location of every node.
//!
//! Probe parameters (`with:`) depend on the probe kind, which may be written after them, so
//! they are read into a [`Node`] first and then deserialized into the probe's own params struct
//! by [`NodeDeserializer`]. Unlike an untyped `Value`, every node and key keeps its
//! [`Location`], and an error raised anywhere below carries the location of the innermost
//! node it was raised at.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

/// One YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Spanned<Node>>),
    /// A mapping, in source order.
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    /// Every string scalar below this node, with its location, in source order.
    pub fn strings<'a>(this: &'a Spanned<Node>, out: &mut Vec<&'a Spanned<Node>>) {
        match &this.value {
            Node::Str(_) => out.push(this),
            Node::Seq(items) => items.iter().for_each(|i| Node::strings(i, out)),
            Node::Map(entries) => entries.iter().for_each(|(_, v)| Node::strings(v, out)),
            _ => {}
        }
    }

    /// The node as JSON (locations dropped), for rendering and output.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(|i| i.value.to_json()).collect()),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// A short name of the node's type, for messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a float",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a sequence",
            Node::Map(_) => "a mapping",
        }
    }
}

impl Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(Spanned<String>, Spanned<Node>)> = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// An error from deserializing a [`Node`], with the location of the node it concerns.
#[derive(Debug, Clone)]
pub struct NodeError {
    /// What went wrong, a lowercase fragment.
    pub message: String,
    /// Where; `None` until a node claims it.
    pub location: Option<Location>,
}

impl NodeError {
    fn at(mut self, location: Location) -> Self {
        if self.location.is_none() {
            self.location = Some(location);
        }
        self
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NodeError {
            message: msg.to_string(),
            location: None,
        }
    }
}

/// Deserializes a typed value out of a [`Spanned<Node>`].
pub struct NodeDeserializer<'a>(pub &'a Spanned<Node>);

impl NodeDeserializer<'_> {
    fn loc(&self) -> Location {
        self.0.referenced
    }
}

/// Deserialize `T` from a node, errors located at the innermost node.
///
/// # Errors
/// When the node does not fit `T`.
pub fn from_node<T: de::DeserializeOwned>(node: &Spanned<Node>) -> Result<T, NodeError> {
    T::deserialize(NodeDeserializer(node)).map_err(|e| e.at(node.referenced))
}

impl<'de> Deserializer<'de> for NodeDeserializer<'_> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let loc = self.loc();
        let result = match &self.0.value {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::Int(i) => visitor.visit_i64(*i),
            Node::Float(f) => visitor.visit_f64(*f),
            Node::Str(s) => visitor.visit_str(s),
            Node::Seq(items) => visitor.visit_seq(NodeSeq {
                iter: items.iter(),
                index: 0,
            }),
            Node::Map(entries) => visitor.visit_map(NodeMap {
                iter: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|e| e.at(loc))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match &self.0.value {
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        let loc = self.loc();
        match &self.0.value {
            Node::Str(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: NodeError| e.at(loc)),
            Node::Map(entries) if entries.len() == 1 => visitor
                .visit_enum(NodeEnum {
                    key: &entries[0].0,
                    value: &entries[0].1,
                })
                .map_err(|e| e.at(loc)),
            other => Err(NodeError {
                message: format!("expected a variant name, found {}", other.kind()),
                location: Some(loc),
            }),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct NodeSeq<'a> {
    iter: std::slice::Iter<'a, Spanned<Node>>,
    index: usize,
}

impl<'de> SeqAccess<'de> for NodeSeq<'_> {
    type Error = NodeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NodeError> {
        match self.iter.next() {
            None => Ok(None),
            Some(node) => {
                self.index += 1;
                seed.deserialize(NodeDeserializer(node))
                    .map(Some)
                    .map_err(|e| e.at(node.referenced))
            }
        }
    }
}

struct NodeMap<'a> {
    iter: std::slice::Iter<'a, (Spanned<String>, Spanned<Node>)>,
    value: Option<&'a Spanned<Node>>,
}

impl<'de> MapAccess<'de> for NodeMap<'_> {
    type Error = NodeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        match self.iter.next() {
            None => Ok(None),
            Some((key, value)) => {
                self.value = Some(value);
                let de: de::value::StrDeserializer<'_, NodeError> =
                    key.value.as_str().into_deserializer();
                seed.deserialize(de)
                    .map(Some)
                    .map_err(|e| e.at(key.referenced))
            }
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let node = self.value.take().ok_or_else(|| NodeError {
            message: "value requested before key".into(),
            location: None,
        })?;
        seed.deserialize(NodeDeserializer(node))
            .map_err(|e| e.at(node.referenced))
    }
}

struct NodeEnum<'a> {
    key: &'a Spanned<String>,
    value: &'a Spanned<Node>,
}

impl<'de, 'a> EnumAccess<'de> for NodeEnum<'a> {
    type Error = NodeError;
    type Variant = NodeDeserializer<'a>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), NodeError> {
        let de: de::value::StrDeserializer<'_, NodeError> =
            self.key.value.as_str().into_deserializer();
        let v = seed
            .deserialize(de)
            .map_err(|e| e.at(self.key.referenced))?;
        Ok((v, NodeDeserializer(self.value)))
    }
}

impl<'de> VariantAccess<'de> for NodeDeserializer<'_> {
    type Error = NodeError;
    fn unit_variant(self) -> Result<(), NodeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, NodeError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }
}
