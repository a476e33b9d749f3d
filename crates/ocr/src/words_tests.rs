use super::*;

fn row(line: u32, conf: f32, text: &str) -> String {
    format!("5\t1\t1\t1\t{line}\t1\t0\t0\t10\t10\t{conf}\t{text}")
}

fn words(rows: &[(u32, f32, &str)]) -> Vec<Word> {
    let header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext";
    let mut tsv = vec![
        header.to_string(),
        "1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t".into(),
    ];
    tsv.extend(rows.iter().map(|&(l, c, t)| row(l, c, t)));
    parse_tsv(&tsv.join("\n"))
}

#[test]
fn parses_word_rows_only() {
    let w = words(&[(1, 96.5, "Hello"), (1, 95.0, "world."), (2, 30.0, "  ")]);
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].line, (1, 1, 1));
    assert_eq!(w[1].text, "world.");
    assert_eq!(w[0].confidence, 96.5);
}

#[test]
fn sure_lines_give_their_text() {
    let w = words(&[
        (1, 96.0, "PLATFORM"),
        (1, 95.0, "4"),
        (2, 96.0, "Trains"),
        (2, 20.0, "~"),
        (2, 96.0, "to"),
        (2, 96.0, "Edinburgh"),
    ]);
    let t = select(&w).unwrap();
    assert_eq!(t.text, "PLATFORM 4 Trains to Edinburgh");
    assert_eq!(t.words, 5);
    assert!((t.confidence - 0.958).abs() < 1e-3, "{}", t.confidence);
}

#[test]
fn what_tesseract_sees_in_fur_is_no_text() {
    // Rows like these come from photos: unsure lines, or a sure stray letter or symbol.
    let w = words(&[
        (1, 33.0, "Te"),
        (1, 19.0, "Hee"),
        (1, 57.0, "he"),
        (2, 84.0, "™"),
        (3, 86.0, "n"),
        (4, 61.0, "Pas"),
        (4, 50.0, "Par"),
    ]);
    assert_eq!(select(&w), None);
    assert_eq!(select(&[]), None);
}

#[test]
fn two_letters_are_no_text() {
    assert_eq!(select(&words(&[(1, 95.0, "Hi")])), None);
    assert!(select(&words(&[(1, 95.0, "Hi!"), (1, 95.0, "A")])).is_some());
}

#[test]
fn long_text_is_cut_at_a_word() {
    let many: Vec<(u32, f32, &str)> = (0..2000).map(|i| (i / 10, 95.0, "word")).collect();
    let t = select(&words(&many)).unwrap();
    assert!(t.text.chars().count() <= MAX_CHARS, "{}", t.text.len());
    assert!(
        t.text.ends_with("word…"),
        "{}",
        &t.text[t.text.len() - 20..]
    );
    assert_eq!(t.words, 2000);
}
