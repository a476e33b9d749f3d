//! The opcode loop of the pickle VM; the checks it relies on live in `pickle.rs`.

use super::{Node, PickleError, Value, Vm};

impl Vm<'_> {
    pub(super) fn run(&mut self) -> Result<(), PickleError> {
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
