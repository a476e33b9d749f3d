//! Checkpoints are written here by hand, opcode by opcode, the way torch's legacy
//! `torch.save` lays them out, then damaged in the ways a hostile file would be.

use super::*;

/// A protocol-2 pickle under construction.
struct P(Vec<u8>);

impl P {
    fn new() -> Self {
        P(vec![0x80, 2])
    }
    fn op(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, s: &str) -> Self {
        let n = (s.len() as u32).to_le_bytes();
        self.op(b"X").op(&n).op(s.as_bytes())
    }
    fn int(self, v: i32) -> Self {
        self.op(b"J").op(&v.to_le_bytes())
    }
    fn global(self, m: &str, n: &str) -> Self {
        self.op(format!("c{m}\n{n}\n").as_bytes())
    }
    fn ints(self, v: &[i32]) -> Self {
        v.iter().fold(self.op(b"("), |p, &x| p.int(x)).op(b"t")
    }
    fn stop(self) -> Vec<u8> {
        self.op(b".").0
    }
}

struct Entry<'a> {
    name: &'a str,
    key: &'a str,
    numel: i32,
    offset: i32,
    shape: &'a [i32],
    stride: &'a [i32],
}

fn header(entries: &[Entry], keys: &[&str]) -> Vec<u8> {
    let mut out = P(vec![0x80, 2, 0x8a, 10])
        .op(&0x1950a86a20f9469cfc6c_u128.to_le_bytes()[..10])
        .stop();
    out.extend(P::new().op(b"M").op(&1001u16.to_le_bytes()).stop());
    out.extend(
        P::new()
            .op(b"}(")
            .str("protocol_version")
            .int(1001)
            .str("little_endian")
            .op(&[0x88])
            .op(b"u")
            .stop(),
    );
    let mut sd = P::new().global("collections", "OrderedDict").op(b")R(");
    for e in entries {
        sd = sd
            .str(e.name)
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .str("storage")
            .global("torch", "FloatStorage")
            .str(e.key)
            .str("cpu")
            .int(e.numel)
            .op(b"NtQ")
            .int(e.offset)
            .ints(e.shape)
            .ints(e.stride)
            .op(&[0x89])
            .global("collections", "OrderedDict")
            .op(b")RtR");
    }
    // OrderedDict's attributes (`_metadata`) arrive as BUILD state after the items.
    out.extend(sd.op(b"u}b").stop());
    let mut list = P::new().op(b"](");
    for k in keys {
        list = list.str(k);
    }
    out.extend(list.op(b"e").stop());
    out
}

fn storage(values: &[f32]) -> Vec<u8> {
    let mut v = (values.len() as u64).to_le_bytes().to_vec();
    for x in values {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// Two tensors sharing storage "0" (a 2x3 matrix and a view at offset 2), and a bias.
fn valid() -> Vec<u8> {
    let entries = [
        Entry {
            name: "w",
            key: "0",
            numel: 6,
            offset: 0,
            shape: &[2, 3],
            stride: &[3, 1],
        },
        Entry {
            name: "tail",
            key: "0",
            numel: 6,
            offset: 2,
            shape: &[4],
            stride: &[1],
        },
        Entry {
            name: "b",
            key: "1",
            numel: 2,
            offset: 0,
            shape: &[2],
            stride: &[1],
        },
    ];
    let mut f = header(&entries, &["0", "1"]);
    f.extend(storage(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    f.extend(storage(&[-1.0, 0.5]));
    f
}

#[test]
fn reads_a_hand_written_checkpoint() {
    let t = read_legacy_pth(&valid()).expect("valid checkpoint");
    let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["w", "tail", "b"]);
    assert_eq!(t[0].1.dims(), &[2, 3]);
    assert_eq!(
        t[0].1.to_vec2::<f32>().ok(),
        Some(vec![vec![1., 2., 3.], vec![4., 5., 6.]])
    );
    assert_eq!(t[1].1.to_vec1::<f32>().ok(), Some(vec![3., 4., 5., 6.]));
    assert_eq!(t[2].1.to_vec1::<f32>().ok(), Some(vec![-1., 0.5]));
}

#[test]
fn strided_views_are_copied_in_row_major_order() {
    // A [2, 3] transpose of a row-major [3, 2] storage, as TensorFlow-converted weights are.
    let t = [Entry {
        name: "t",
        key: "0",
        numel: 6,
        offset: 0,
        shape: &[2, 3],
        stride: &[1, 2],
    }];
    let mut f = header(&t, &["0"]);
    f.extend(storage(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let t = read_legacy_pth(&f).expect("strided view");
    assert_eq!(
        t[0].1.to_vec2::<f32>().ok(),
        Some(vec![vec![1., 3., 5.], vec![2., 4., 6.]])
    );
}

#[test]
fn bad_magic_and_zip_are_refused() {
    let mut f = valid();
    f[5] ^= 0xff;
    assert!(matches!(read_legacy_pth(&f), Err(PthError::BadMagic(_))));
    assert!(matches!(
        read_legacy_pth(b"hello"),
        Err(PthError::BadMagic(_))
    ));
    assert!(matches!(read_legacy_pth(b""), Err(PthError::BadMagic(_))));
    assert!(matches!(
        read_legacy_pth(b"PK\x03\x04rest"),
        Err(PthError::ZipFormat)
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let f = valid();
    for len in 0..f.len() {
        assert!(
            read_legacy_pth(&f[..len]).is_err(),
            "accepted {len} of {} bytes",
            f.len()
        );
    }
}

#[test]
fn storage_larger_than_the_file_is_refused_before_allocating() {
    let entries = [Entry {
        name: "w",
        key: "0",
        numel: i32::MAX,
        offset: 0,
        shape: &[2],
        stride: &[1],
    }];
    let mut f = header(&entries, &["0"]);
    f.extend((i32::MAX as u64).to_le_bytes());
    f.extend([0u8; 8]);
    match read_legacy_pth(&f) {
        Err(PthError::Truncated { need, .. }) => assert_eq!(need, i32::MAX as u64 * 4),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn count_that_disagrees_with_the_header_is_refused() {
    let mut f = valid();
    let at = f.len() - (8 + 8) - (8 + 24);
    f[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = read_legacy_pth(&f).expect_err("bad count");
    assert!(e.to_string().contains("holds"), "{e}");
}

#[test]
fn views_past_their_storage_are_refused() {
    let over = [Entry {
        name: "w",
        key: "0",
        numel: 2,
        offset: 1,
        shape: &[2],
        stride: &[1],
    }];
    let mut f = header(&over, &["0"]);
    f.extend(storage(&[1.0, 2.0]));
    assert!(read_legacy_pth(&f)
        .expect_err("overrun")
        .to_string()
        .contains("overruns"));

    let transposed = [Entry {
        name: "w",
        key: "0",
        numel: 4,
        offset: 0,
        shape: &[2, 3],
        stride: &[1, 2],
    }];
    let mut f = header(&transposed, &["0"]);
    f.extend(storage(&[1.0, 2.0, 3.0, 4.0]));
    assert!(read_legacy_pth(&f)
        .expect_err("strided")
        .to_string()
        .contains("overruns"));

    let huge = [Entry {
        name: "w",
        key: "0",
        numel: 4,
        offset: 0,
        shape: &[i32::MAX, i32::MAX, i32::MAX],
        stride: &[1, 1, 1],
    }];
    let mut f = header(&huge, &["0"]);
    f.extend(storage(&[1.0, 2.0, 3.0, 4.0]));
    assert!(read_legacy_pth(&f).is_err());
}

#[test]
fn pickle_bombs_are_refused() {
    // Each BINGET copies the memo entry; PUT then stores the doubled tuple again.
    let mut bomb = P::new().op(b"]q\x00");
    for _ in 0..64 {
        bomb = bomb.op(b"h\x00h\x00\x86q\x00");
    }
    let e = pickle::load(&bomb.stop(), 0).expect_err("memo bomb");
    assert!(
        e.message.contains("too many") || e.message.contains("deeper"),
        "{e}"
    );

    let deep = P::new().op(b"N").op(&[0x85; 100_000]).stop();
    let e = pickle::load(&deep, 0).expect_err("deep nesting");
    assert!(e.message.contains("deeper"), "{e}");

    let long_string = P::new()
        .op(b"X")
        .op(&u32::MAX.to_le_bytes())
        .op(b"abc")
        .stop();
    let e = pickle::load(&long_string, 0).expect_err("string past the end");
    assert!(e.message.contains("needs 4294967295 bytes"), "{e}");
}

#[test]
fn single_byte_damage_never_panics() {
    let f = valid();
    for i in 0..f.len() {
        for x in [0x00, 0xff, 0x7f, b'(', b't', b'.', b'h'] {
            let mut g = f.clone();
            g[i] = x;
            let _ = read_legacy_pth(&g);
        }
    }
}
