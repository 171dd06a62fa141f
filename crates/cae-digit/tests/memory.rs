//! Peak memory of turning a huge (but accepted) image into a digit stays bounded: an 8000×8000
//! PNG, a 0.3 MB file, once took 977 MB. Alone in its test binary, so that the process's peak
//! memory (VmHWM) is this test's.
#![cfg(target_os = "linux")]

use std::io::BufWriter;

use cae_digit::{load_digit, DigitLimits};

const SIDE: u32 = 8000;
const LIMIT_BYTES: u64 = 300 << 20;

fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn a_huge_accepted_image_is_processed_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.png");
    {
        // Row by row, so that the test itself never holds the 64 MB image.
        let file = BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut encoder = png::Encoder::new(file, SIDE, SIDE);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let mut row = vec![240u8; SIDE as usize];
        for y in 0..SIDE {
            // A dark vertical bar: a "1".
            let ink = (1500..6500).contains(&y);
            row[3800..4200].fill(if ink { 20 } else { 240 });
            std::io::Write::write_all(&mut stream, &row).unwrap();
        }
        stream.finish().unwrap();
    }
    let digit = load_digit(&path, &DigitLimits::default()).unwrap();
    assert_eq!(digit.original_size, (SIDE, SIDE));
    assert!(digit.inverted);
    assert!(digit.pixels.iter().any(|&p| p > 0.9));
    let peak = peak_memory();
    eprintln!(
        "{} bytes of PNG; peak resident memory {} MB",
        std::fs::metadata(&path).unwrap().len(),
        peak >> 20
    );
    assert!(peak < LIMIT_BYTES, "peak memory {} MB", peak >> 20);
}
