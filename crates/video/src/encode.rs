//! Tiny encoders that hand decoded media on as files the pipeline already reads: frames as
//! 24-bit BMP (no compression, so it costs a copy), audio as 32-bit float WAV.

/// Row-major RGB (`width * height * 3` bytes) as a BMP file.
pub fn bmp_bytes(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    assert_eq!(rgb.len(), w * h * 3, "RGB buffer does not match its size");
    let row = (w * 3).div_ceil(4) * 4;
    let data = row * h;
    let mut out = Vec::with_capacity(54 + data);
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&((54 + data) as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(width as i32).to_le_bytes());
    // Negative height: rows run top to bottom.
    out.extend_from_slice(&(-(height as i32)).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(data as u32).to_le_bytes());
    out.extend_from_slice(&2835u32.to_le_bytes());
    out.extend_from_slice(&2835u32.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    for y in 0..h {
        for px in rgb[y * w * 3..(y + 1) * w * 3].chunks_exact(3) {
            out.extend_from_slice(&[px[2], px[1], px[0]]);
        }
        out.resize(out.len() + (row - w * 3), 0);
    }
    out
}

/// Mono 32-bit float samples as a WAV file.
pub fn wav_bytes(sample_rate: u32, samples: &[f32]) -> Vec<u8> {
    let data = (samples.len() * 4) as u32;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 4).to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use percept_media::image::{decode_image_bytes, ImageOptions};

    #[test]
    fn bmp_round_trips_through_the_image_decoder() {
        let (w, h) = (5u32, 3u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let img = decode_image_bytes("f", &bmp_bytes(w, h, &rgb), &ImageOptions::default())
            .expect("decodes");
        assert_eq!((img.width, img.height), (w, h));
        assert_eq!(img.rgb, rgb);
    }

    #[test]
    fn wav_round_trips_through_the_audio_decoder() {
        let samples: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        std::fs::write(&p, wav_bytes(16_000, &samples)).unwrap();
        let clip = percept_media::decode_file(&p, 16_000).expect("decodes");
        assert_eq!(clip.samples.len(), samples.len());
        assert!((clip.samples[100] - samples[100]).abs() < 1e-6);
    }
}
