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
/// EfficientNet-Lite0's header needs about 20,000.
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
        if pairs && items.len() % 2 != 0 {
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

    fn run(&mut self) -> Result<(), PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                b'.' => return Ok(()),
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(self.err(format!("unsupported pickle protocol {proto}")));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push_leaf(Value::Global { module, name })?;
                }
                b'N' => self.push_leaf(Value::None)?,
                0x88 => self.push_leaf(Value::Bool(true))?,
                0x89 => self.push_leaf(Value::Bool(false))?,
                b'K' => {
                    let v = self.u8()?;
                    self.push_leaf(Value::Int(v.into()))?;
                }
                b'M' => {
                    let b = self.take(2)?;
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    self.push_leaf(Value::Int(v.into()))?;
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push_leaf(Value::Int(v.into()))?;
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    if n > 16 {
                        return Err(self.err(format!("{n}-byte integer is too large")));
                    }
                    let b = self.take(n)?;
                    let mut buf = [0u8; 16];
                    buf[..n].copy_from_slice(b);
                    if n > 0 && b[n - 1] & 0x80 != 0 {
                        buf[n..].fill(0xff); // sign-extend two's complement
                    }
                    self.push_leaf(Value::Int(i128::from_le_bytes(buf)))?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push_leaf(Value::Float(f64::from_be_bytes(a)))?;
                }
                b'X' | b'T' | 0x8c | b'U' => {
                    let n = if matches!(op, b'X' | b'T') {
                        self.u32()? as usize
                    } else {
                        usize::from(self.u8()?)
                    };
                    // `take` checks the length against the input before anything is copied.
                    let raw = self.take(n)?.to_vec();
                    let s = self.text(raw)?;
                    self.push_leaf(Value::Str(s))?;
                }
                b'B' | b'C' => {
                    let n = if op == b'B' {
                        self.u32()? as usize
                    } else {
                        usize::from(self.u8()?)
                    };
                    let raw = self.take(n)?.to_vec();
                    self.push_leaf(Value::Bytes(raw))?;
                }
                b'}' => self.push_leaf(Value::Dict(Vec::new()))?,
                b']' => self.push_leaf(Value::List(Vec::new()))?,
                b')' => self.push_leaf(Value::Tuple(Vec::new()))?,
                b'(' => self.marks.push(self.stack.len()),
                b't' => {
                    let items = self.pop_mark()?;
                    self.tuple(items)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.tuple(items)?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_leaf(Value::List(Vec::new()))?;
                    self.extend_top(items, false)?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push_leaf(Value::Dict(Vec::new()))?;
                    self.extend_top(items, true)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_top(vec![v], false)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, false)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_top(vec![k, v], true)?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, true)?;
                }
                b'R' | 0x81 | b'b' => {
                    let second = self.pop()?;
                    let first = self.pop()?;
                    self.combine(op, first, second)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let (depth, units) = self.parent(&[&pid])?;
                    self.stack.push(Node {
                        value: Value::PersId(Box::new(pid)),
                        depth,
                        units,
                    });
                }
                b'q' | b'r' | 0x94 => {
                    let id = match op {
                        b'q' => u32::from(self.u8()?),
                        b'r' => self.u32()?,
                        _ => self.memo.len() as u32,
                    };
                    let floor = self.marks.last().copied().unwrap_or(0);
                    let top = match self.stack.last() {
                        Some(t) if self.stack.len() > floor => t.clone(),
                        _ => return Err(self.err("PUT on an empty stack")),
                    };
                    self.charge(top.units)?;
                    self.memo.insert(id, top);
                }
                b'h' | b'j' => {
                    let id = if op == b'h' {
                        u32::from(self.u8()?)
                    } else {
                        self.u32()?
                    };
                    let v = self
                        .memo
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| self.err(format!("memo {id} was never stored")))?;
                    // A copy costs as much as the original: this is what stops doubling.
                    self.charge(v.units)?;
                    self.stack.push(v);
                }
                other => return Err(self.err(format!("unsupported opcode 0x{other:02x}"))),
            }
        }
    }

    /// REDUCE, NEWOBJ and BUILD: two operands become one value.
    fn combine(&mut self, op: u8, first: Node, second: Node) -> Result<(), PickleError> {
        let is_ordered_dict = matches!(
            &first.value,
            Value::Global { module, name } if module == "collections" && name == "OrderedDict"
        );
        if op != b'b' && is_ordered_dict {
            // Its items follow as SETITEMS, so it must be a dict they can land in.
            return self.push_leaf(Value::Dict(Vec::new()));
        }
        let (depth, units) = self.parent(&[&first, &second])?;
        let (a, b) = (Box::new(first), Box::new(second));
        let value = if op == b'b' {
            Value::Build { obj: a, state: b }
        } else {
            Value::Reduce {
                callable: a,
                args: b,
            }
        };
        self.stack.push(Node {
            value,
            depth,
            units,
        });
        Ok(())
    }
}
