//! Helpers for tests (here and in other crates) that need wheels without a registry.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes a minimal valid wheel `NAME-VER-py3-none-any.whl` holding `members`,
/// which `pip download --no-index --find-links DIR NAME==VER` accepts.
pub fn write_wheel(
    dir: &Path,
    name: &str,
    version: &str,
    members: &[(&str, &[u8])],
) -> std::io::Result<PathBuf> {
    let norm = name.replace('-', "_");
    let path = dir.join(format!("{norm}-{version}-py3-none-any.whl"));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path)?);
    let opts = zip::write::SimpleFileOptions::default();
    let info = format!("{norm}-{version}.dist-info");
    let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    let wheel =
        "Wheel-Version: 1.0\nGenerator: percept-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
    let meta_files = [
        (format!("{info}/METADATA"), metadata.into_bytes()),
        (format!("{info}/WHEEL"), wheel.as_bytes().to_vec()),
        (format!("{info}/RECORD"), Vec::new()),
    ];
    let all = members
        .iter()
        .map(|(p, d)| (p.to_string(), d.to_vec()))
        .chain(meta_files);
    for (p, d) in all {
        zip.start_file(p, opts).map_err(std::io::Error::other)?;
        zip.write_all(&d)?;
    }
    zip.finish().map_err(std::io::Error::other)?;
    Ok(path)
}
