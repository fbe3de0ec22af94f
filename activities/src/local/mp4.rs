//! What the studio needs to know of an MP4 (ISO base media / QuickTime) file without starting
//! ffprobe: its tracks, their kinds and lengths, read from the `moov` box.
//!
//! Why: every scene asks a clip's length and whether it has sound, and ffprobe costs a process
//! start (about a tenth of a second of processor) each time, which on a small machine making
//! scenes side by side is a good part of the film's work. The box layout is in ISO/IEC 14496-12
//! (`mvhd`, `tkhd`, `mdhd`, `hdlr`, `elst`, `stts`). Anything this reader does not understand
//! (another container, a fragmented file, a box it cannot make sense of) gives `None`, and the
//! caller asks ffprobe, as before.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most of a `moov` box read into memory (a long film's index is a few MB).
const MAX_MOOV: u64 = 64 << 20;

/// One track.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Its handler: `vide`, `soun`, ...
    pub kind: [u8; 4],
    /// How long it plays, seconds: its edit list's span when it has one, else its media's.
    pub duration: f64,
    /// Its samples (for video, its frames).
    pub samples: u64,
}

/// An MP4 file's tracks.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// The movie's length, seconds (`mvhd`).
    pub duration: f64,
    /// Its tracks, in file order.
    pub tracks: Vec<Track>,
}

impl Info {
    /// The first video track.
    pub fn video(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| &t.kind == b"vide")
    }

    /// Whether it has a sound track.
    pub fn has_audio(&self) -> bool {
        self.tracks.iter().any(|t| &t.kind == b"soun")
    }

    /// Its length as the studio counts it: the video track's, else the movie's.
    pub fn length(&self) -> f64 {
        self.video().map_or(self.duration, |v| v.duration)
    }
}

/// Read a file's tracks; `None` when it is not an MP4 this reader understands.
pub fn read(path: &Path) -> Option<Info> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut at = 0u64;
    while at + 8 <= len {
        f.seek(SeekFrom::Start(at)).ok()?;
        let mut head = [0u8; 16];
        f.read_exact(&mut head[..8]).ok()?;
        let mut size = be32(&head[0..4]) as u64;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let mut header = 8;
        if size == 1 {
            f.read_exact(&mut head[8..16]).ok()?;
            size = be64(&head[8..16]);
            header = 16;
        } else if size == 0 {
            size = len - at;
        }
        if size < header || at + size > len {
            return None;
        }
        if &kind == b"moov" {
            let body = size - header;
            if body > MAX_MOOV {
                return None;
            }
            let mut moov = vec![0u8; body as usize];
            f.read_exact(&mut moov).ok()?;
            return parse_moov(&moov);
        }
        // A fragmented file's length is spread over its fragments: ffprobe knows better.
        if &kind == b"moof" {
            return None;
        }
        at += size;
    }
    None
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The boxes directly inside `data`: (type, body).
fn boxes(data: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    let mut out = vec![];
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let mut size = be32(&data[at..]) as u64;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().ok()?;
        let mut header = 8u64;
        if size == 1 {
            if at + 16 > data.len() {
                return None;
            }
            size = be64(&data[at + 8..]);
            header = 16;
        } else if size == 0 {
            size = (data.len() - at) as u64;
        }
        if size < header || at as u64 + size > data.len() as u64 {
            return None;
        }
        out.push((kind, &data[at + header as usize..at + size as usize]));
        at += size as usize;
    }
    Some(out)
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data)?
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, b)| b)
}

/// `(timescale, duration)` of an `mvhd` or `mdhd` body (their first fields are laid out alike).
fn scale_and_duration(b: &[u8]) -> Option<(u32, u64)> {
    match *b.first()? {
        0 if b.len() >= 20 => Some((be32(&b[12..]), be32(&b[16..]) as u64)),
        1 if b.len() >= 32 => Some((be32(&b[20..]), be64(&b[24..]))),
        _ => None,
    }
}

fn parse_moov(moov: &[u8]) -> Option<Info> {
    let (scale, duration) = scale_and_duration(child(moov, b"mvhd")?)?;
    if scale == 0 {
        return None;
    }
    let mut tracks = vec![];
    for (kind, trak) in boxes(moov)? {
        if &kind == b"trak" {
            tracks.push(parse_trak(trak, scale)?);
        }
    }
    Some(Info {
        duration: duration as f64 / scale as f64,
        tracks,
    })
}

fn parse_trak(trak: &[u8], movie_scale: u32) -> Option<Track> {
    let mdia = child(trak, b"mdia")?;
    let hdlr = child(mdia, b"hdlr")?;
    let kind: [u8; 4] = hdlr.get(8..12)?.try_into().ok()?;
    let (scale, media) = scale_and_duration(child(mdia, b"mdhd")?)?;
    if scale == 0 {
        return None;
    }
    let stbl = child(child(mdia, b"minf")?, b"stbl")?;
    let stts = child(stbl, b"stts")?;
    let entries = be32(stts.get(4..8)?) as usize;
    let mut samples = 0u64;
    for i in 0..entries {
        let e = stts.get(8 + i * 8..16 + i * 8)?;
        samples += be32(&e[0..4]) as u64;
    }
    let mut seconds = media as f64 / scale as f64;
    // An edit list says which span of the media plays; its segments are in the movie's scale.
    if let Some(elst) = child(trak, b"edts").and_then(|e| child(e, b"elst")) {
        let version = *elst.first()?;
        let n = be32(elst.get(4..8)?) as usize;
        let (step, wide) = if version == 1 {
            (20, true)
        } else {
            (12, false)
        };
        let mut span = 0u64;
        for i in 0..n {
            let e = elst.get(8 + i * step..8 + (i + 1) * step)?;
            let (segment, media_time) = if wide {
                (be64(&e[0..8]), be64(&e[8..16]) as i64)
            } else {
                (be32(&e[0..4]) as u64, be32(&e[4..8]) as i32 as i64)
            };
            let rate = be16(&e[if wide { 16 } else { 8 }..]);
            // An empty edit (a delay) or a dwell is more than this reader will vouch for.
            if media_time < 0 || rate != 1 {
                return None;
            }
            span += segment;
        }
        if n > 0 && span > 0 {
            seconds = span as f64 / movie_scale as f64;
        }
    }
    Some(Track {
        kind,
        duration: seconds,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_an_mp4_is_left_to_ffprobe() {
        let dir = std::env::temp_dir().join(format!("slate-mp4-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("x.mp4");
        std::fs::write(&junk, b"RIFF....WAVEfmt not a movie at all").unwrap();
        assert_eq!(read(&junk), None);
        // A box claiming more than the file holds.
        let mut cut = vec![0, 0, 0x10, 0, b'm', b'o', b'o', b'v'];
        cut.extend([0u8; 32]);
        std::fs::write(&junk, &cut).unwrap();
        assert_eq!(read(&junk), None);
        assert_eq!(read(&dir.join("missing.mp4")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
