//! Small real media files, made without any library, that a browser shows and plays: a PNG
//! (stored deflate blocks), a WAV (PCM) and a short WebM clip. The standalone fake serves
//! them as its jobs' outputs; tests use them as inputs and outputs.

/// A `width` × `height` RGB PNG with a gradient.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    png_marked(width, height, None)
}

/// A `width` × `height` RGB PNG with a gradient, marked with `mark` (a job's number): a band
/// of 16 cells along the bottom, dark for a 0 bit and light for a 1, lowest bit first, and a
/// hue of its own, so each job's picture is told apart at a glance.
pub fn png_marked(width: u32, height: u32, mark: Option<u64>) -> Vec<u8> {
    let blue = mark.map_or(128, |m| (m.wrapping_mul(97) % 256) as u32);
    let band = height / 6;
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            let pixel = match mark {
                Some(m) if y >= height - band => {
                    let bit = (x * 16 / width.max(1)).min(15);
                    if m >> bit & 1 == 1 {
                        [240, 240, 240]
                    } else {
                        [20, 20, 20]
                    }
                }
                _ => [
                    (x * 255 / width.max(1)) as u8,
                    (y * 255 / height.max(1)) as u8,
                    blue as u8,
                ],
            };
            raw.extend(pixel);
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Half a second of a 440 Hz tone, 8 kHz mono 16-bit PCM WAV.
pub fn wav() -> Vec<u8> {
    wav_tone(440.0)
}

/// Half a second of a `hz` tone, 8 kHz mono 16-bit PCM WAV.
pub fn wav_tone(hz: f64) -> Vec<u8> {
    let rate = 8000u32;
    let samples: Vec<u8> = (0..rate / 2)
        .flat_map(|i| {
            {
                let t = f64::from(i) / f64::from(rate);
                ((t * hz * std::f64::consts::TAU).sin() * 8000.0) as i16
            }
            .to_le_bytes()
        })
        .collect();
    let mut out = b"RIFF".to_vec();
    out.extend((36 + samples.len() as u32).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes()); // PCM
    out.extend(1u16.to_le_bytes()); // mono
    out.extend(rate.to_le_bytes());
    out.extend((rate * 2).to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(b"data");
    out.extend((samples.len() as u32).to_le_bytes());
    out.extend(samples);
    out
}

/// One second of ffmpeg's synthetic test pattern, 64 × 64 at 10 frames per second, VP8 in
/// WebM (4 KB): a video every Chromium plays. Made once with
/// `ffmpeg -f lavfi -i testsrc=size=64x64:rate=10:duration=1 -c:v libvpx -b:v 50k -pix_fmt yuv420p -an -fflags +bitexact -flags:v +bitexact clip.webm`
/// and committed, so nothing needs ffmpeg.
pub const WEBM: &[u8] = include_bytes!("clip.webm");

/// The file a job's output named `name` holds in the fake's media mode, and its media type:
/// a PNG marked with the job's number (`fake-0042-...` is 42), a WAV whose pitch follows it,
/// or the WebM clip; `None` for another extension.
pub fn output_file(request_id: &str, name: &str) -> Option<(Vec<u8>, &'static str)> {
    let number = request_id
        .split('-')
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok());
    match name.rsplit('.').next()? {
        "png" => Some((png_marked(160, 90, number), "image/png")),
        "wav" => Some((
            wav_tone(220.0 + 20.0 * (number.unwrap_or(0) % 24) as f64),
            "audio/wav",
        )),
        "webm" => Some((WEBM.to_vec(), "video/webm")),
        _ => None,
    }
}
