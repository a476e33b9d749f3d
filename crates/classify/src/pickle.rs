//! A small pickle VM for the opcodes `torch.save` writes (protocols 2 to 4).
//!
//! candle's `pickle::Stack` is built for trusted checkpoints: it sizes a string buffer from
//! the declared length before reading, deep-copies memo entries without limit (a few dozen
//! bytes of `BINGET`/`TUPLE2` pairs double a value each time) and nests without limit (a
//! long run of `TUPLE1` overflows the stack when the value is dropped). Model files here
//! come from a registry, so this VM checks every length against the bytes left, charges
//! every value (memo copies included) to a budget and caps nesting depth.

use std::collections::HashMap;

/// Deeper values than this are refused; torch state dicts nest about 5 levels.
const MAX_DEPTH: u32 = 64;
/// Budget in units of about one value (a string costs one unit per 32 bytes more);
/// a state dict costs a few dozen units per tensor (EfficientNet-Lite0: 296 tensors).
const MAX_UNITS: u64 = 4_000_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    /// Python ints of up to 16 bytes (torch's magic number takes 10).
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Node>),
    List(Vec<Node>),
    /// Items in insertion order; keys may repeat if the pickle repeats them.
    Dict(Vec<(Node, Node)>),
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args)`, left for the caller to interpret.
    Reduce {
        callable: Box<Node>,
        args: Box<Node>,
    },
    /// `obj.__setstate__(state)`, left for the caller to interpret.
    Build {
        obj: Box<Node>,
        state: Box<Node>,
    },
    /// A persistent id (torch uses it for tensor storages).
    PersId(Box<Node>),
}

/// A value with its nesting depth and cost, so that neither needs a recursive walk.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    depth: u32,
    units: u64,
}

impl Node {
    fn leaf(value: Value) -> Self {
        let units = match &value {
            Value::Str(s) => 1 + s.len() as u64 / 32,
            Value::Bytes(b) => 1 + b.len() as u64 / 32,
            _ => 1,
        };
        Node {
            value,
            depth: 0,
            units,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pickle at byte {offset}: {message}")]
pub struct PickleError {
    pub offset: usize,
    pub message: String,
}

/// Reads one pickle from `bytes[start..]`; returns the value and the offset after `STOP`.
pub fn load(bytes: &[u8], start: usize) -> Result<(Node, usize), PickleError> {
    let mut vm = Vm {
        input: bytes,
        pos: start,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        units: 0,
    };
    vm.run()?;
    let top = vm.pop()?;
    Ok((top, vm.pos))
}

struct Vm<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Node>,
    marks: Vec<usize>,
    memo: HashMap<u32, Node>,
    units: u64,
}

impl Vm<'_> {
    fn err(&self, message: impl Into<String>) -> PickleError {
        PickleError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.input.len())
            .ok_or_else(|| {
                self.err(format!(
                    "needs {n} bytes, {} left",
                    self.input.len() - self.pos
                ))
            })?;
        let s = &self.input[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let input = self.input;
        let rest = &input[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| self.err("unterminated line"))?;
        let s = self.text(rest[..n].to_vec())?;
        self.pos += n + 1;
        Ok(s)
    }

    fn text(&self, b: Vec<u8>) -> Result<String, PickleError> {
        String::from_utf8(b).map_err(|_| self.err("string is not UTF-8"))
    }

    fn charge(&mut self, units: u64) -> Result<(), PickleError> {
        self.units += units;
        if self.units > MAX_UNITS {
            return Err(self.err("pickle builds too many values"));
        }
        Ok(())
    }

    fn push_leaf(&mut self, value: Value) -> Result<(), PickleError> {
        let node = Node::leaf(value);
        self.charge(node.units)?;
        self.stack.push(node);
        Ok(())
    }

    fn pop(&mut self) -> Result<Node, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Node>, PickleError> {
        let at = self.marks.pop().ok_or_else(|| self.err("no MARK"))?;
        Ok(self.stack.split_off(at))
    }

    /// Depth and cost of a new container over `children` (already paid for), checked.
    fn parent(&mut self, children: &[&Node]) -> Result<(u32, u64), PickleError> {
        let depth = 1 + children.iter().map(|c| c.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(self.err(format!("values nest deeper than {MAX_DEPTH}")));
        }
        self.charge(1)?;
        Ok((depth, 1 + children.iter().map(|c| c.units).sum::<u64>()))
    }

    fn tuple(&mut self, items: Vec<Node>) -> Result<(), PickleError> {
        let (depth, units) = self.parent(&items.iter().collect::<Vec<_>>())?;
        self.stack.push(Node {
            value: Value::Tuple(items),
            depth,
            units,
        });
        Ok(())
    }

    /// Adds children to the list or dict on top of the stack.
    fn extend_top(&mut self, items: Vec<Node>, pairs: bool) -> Result<(), PickleError> {
        if pairs && !items.len().is_multiple_of(2) {
            return Err(self.err("SETITEMS with an odd number of values"));
        }
        let (depth, units) = self.parent(&items.iter().collect::<Vec<_>>())?;
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        let top = self.stack.last_mut().ok_or_else(|| PickleError {
            offset: self.pos,
            message: "stack underflow".into(),
        })?;
        top.depth = top.depth.max(depth);
        top.units += units - 1;
        match (&mut top.value, pairs) {
            (Value::List(v), false) => v.extend(items),
            (Value::Dict(d), true) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            _ => return Err(self.err("APPEND/SETITEM target is not a list or dict")),
        }
        Ok(())
    }
}

#[path = "pickle_ops.rs"]
mod ops;
