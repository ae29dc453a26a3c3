//! Layer compression, streamed: gzip (flate2 on zlib-rs) and zstd, in both directions.
//!
//! ferry keeps layers as they are unless a format needs a change or a flag asks for one
//! (`--dest-compress`, `--dest-decompress`, `--dest-compress-format`, a `docker-archive:`
//! destination). Then [`transform`] turns a blob stream into another: the work runs on a
//! blocking thread between two small bounded channels, so memory stays bounded whatever the
//! layer's size and the async workers keep moving bytes. Nothing goes through a temporary file.
//!
//! The compressed bytes differ from skopeo's (it compresses with Go's parallel gzip): the
//! uncompressed content, and so the config's `diff_ids`, is what must match.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::error::{Error, Result};
use crate::image::BlobStream;

/// A compression algorithm ferry writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "gzip" => Ok(Algorithm::Gzip),
            "zstd" => Ok(Algorithm::Zstd),
            "zstd:chunked" => Err("zstd:chunked is not supported (use zstd)".into()),
            other => Err(format!(
                "unknown compression algorithm {other:?} (gzip or zstd)"
            )),
        }
    }
}

impl Algorithm {
    /// Its name, as skopeo's flags spell it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Gzip => "gzip",
            Algorithm::Zstd => "zstd",
        }
    }
}

/// What the first bytes of a blob say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// bzip2 (`BZh`): read by skopeo, not by ferry.
    Bzip2,
    /// xz: read by skopeo, not by ferry.
    Xz,
    /// None of those: uncompressed.
    None,
}

/// Recognise a compressed stream by its first bytes (as containers/image's `DetectCompression`).
pub fn detect(prefix: &[u8]) -> Detected {
    if prefix.starts_with(&[0x1f, 0x8b, 0x08]) {
        Detected::Gzip
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Detected::Zstd
    } else if prefix.starts_with(b"BZh") {
        Detected::Bzip2
    } else if prefix.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Detected::Xz
    } else {
        Detected::None
    }
}

/// What [`transform`] does to a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Decompress it.
    Decompress(Algorithm),
    /// Compress it, at a level (`None`: the algorithm's default).
    Compress(Algorithm, Option<i32>),
    /// Decompress, then compress with another algorithm.
    Recompress(Algorithm, Algorithm, Option<i32>),
}

/// Bytes from an async channel, read by a blocking (de)compressor. A failure of the source
/// is kept whole in `failure` and surfaces as the transform's error.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes>>,
    current: Bytes,
    failure: Arc<Mutex<Option<Error>>>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => {
                    *self.failure.lock().expect("failure slot") = Some(e);
                    return Err(std::io::Error::other("the source failed"));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

fn decoder(a: Algorithm, r: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read + Send>> {
    Ok(match a {
        // Go's gzip reader reads concatenated members too.
        Algorithm::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Algorithm::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
    })
}

fn encoder(
    a: Algorithm,
    level: Option<i32>,
    r: Box<dyn Read + Send>,
) -> std::io::Result<Box<dyn Read + Send>> {
    Ok(match a {
        Algorithm::Gzip => {
            let level = match level {
                Some(l) => flate2::Compression::new(l.clamp(0, 9) as u32),
                None => flate2::Compression::default(),
            };
            Box::new(flate2::read::GzEncoder::new(r, level))
        }
        Algorithm::Zstd => Box::new(zstd::stream::read::Encoder::new(r, level.unwrap_or(3))?),
    })
}

const CHUNK: usize = 256 * 1024;

/// Transform a blob stream (see [`Op`]). `what` names the blob in messages. The output ends
/// with an error item if the input fails or is not valid compressed data.
pub fn transform(input: BlobStream, op: Op, what: String) -> BlobStream {
    let (in_tx, in_rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(4);
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(4);
    let slot: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
    tokio::spawn(async move {
        let mut input = input;
        while let Some(item) = input.next().await {
            let stop = item.is_err();
            if in_tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    tokio::task::spawn_blocking(move || {
        let reader: Box<dyn Read + Send> = Box::new(ChannelReader {
            rx: in_rx,
            current: Bytes::new(),
            failure: slot.clone(),
        });
        let built = match op {
            Op::Decompress(a) => decoder(a, reader),
            Op::Compress(a, l) => encoder(a, l, reader),
            Op::Recompress(from, to, l) => decoder(from, reader).and_then(|r| encoder(to, l, r)),
        };
        let mut r = match built {
            Ok(r) => r,
            Err(e) => {
                let _ = out_tx.blocking_send(Err(fail(&what, op, e, &slot)));
                return;
            }
        };
        loop {
            let mut buf = vec![0u8; CHUNK];
            match r.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if out_tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = out_tx.blocking_send(Err(fail(&what, op, e, &slot)));
                    return;
                }
            }
        }
    });
    Box::pin(tokio_stream_from(out_rx))
}

fn fail(what: &str, op: Op, e: std::io::Error, slot: &Mutex<Option<Error>>) -> Error {
    if let Some(source) = slot.lock().expect("failure slot").take() {
        return source;
    }
    let doing = match op {
        Op::Decompress(a) | Op::Recompress(a, _, _) => format!("decompressing ({})", a.name()),
        Op::Compress(a, _) => format!("compressing ({})", a.name()),
    };
    Error::Io {
        what: format!("{doing} {what}"),
        path: "-".into(),
        source: e,
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes>>,
) -> impl futures_util::Stream<Item = Result<Bytes>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A decompressed copy of a compressed archive (gzip or zstd) in a temporary file, or `None`
/// when the file is not compressed. bzip2 and xz are refused by name.
pub fn decompressed_copy(path: &Path) -> Result<Option<tempfile::NamedTempFile>> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("reading archive", path, e))?;
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut f, &mut magic).map_err(|e| Error::io("reading archive", path, e))?;
    let alg = match detect(&magic[..n]) {
        Detected::None => return Ok(None),
        Detected::Gzip => Algorithm::Gzip,
        Detected::Zstd => Algorithm::Zstd,
        other => {
            return Err(Error::Unsupported(format!(
                "reading a {other:?}-compressed archive ({}; decompress it first)",
                path.display()
            )));
        }
    };
    let f = std::fs::File::open(path).map_err(|e| Error::io("reading archive", path, e))?;
    let mut dec = decoder(alg, Box::new(f)).map_err(|e| Error::io("decompressing", path, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".ferry-tmp-archive-")
        .tempfile()
        .map_err(|e| Error::io("creating a temporary file in", std::env::temp_dir(), e))?;
    std::io::copy(&mut dec, tmp.as_file_mut()).map_err(|e| Error::io("decompressing", path, e))?;
    Ok(Some(tmp))
}

/// Read until `buf` is full or the reader ends.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(data: Vec<u8>, chunk: usize) -> BlobStream {
        let chunks: Vec<Result<Bytes>> = data
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures_util::stream::iter(chunks))
    }

    async fn collect(s: BlobStream) -> Result<Vec<u8>> {
        let mut out = vec![];
        let mut s = s;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn round_trips() {
        let mut data = vec![0u8; 3_000_000];
        fastrand::Rng::with_seed(7).fill(&mut data[..1_000_000]);
        for a in [Algorithm::Gzip, Algorithm::Zstd] {
            let packed = collect(transform(
                stream_of(data.clone(), 70_000),
                Op::Compress(a, None),
                "t".into(),
            ))
            .await
            .unwrap();
            assert!(packed.len() < data.len());
            assert_eq!(
                detect(&packed),
                if a == Algorithm::Gzip {
                    Detected::Gzip
                } else {
                    Detected::Zstd
                }
            );
            let back = collect(transform(
                stream_of(packed, 4096),
                Op::Decompress(a),
                "t".into(),
            ))
            .await
            .unwrap();
            assert!(back == data, "{a:?} round trip");
        }
        let gz = collect(transform(
            stream_of(data.clone(), 1 << 20),
            Op::Compress(Algorithm::Gzip, Some(1)),
            "t".into(),
        ))
        .await
        .unwrap();
        let zst = collect(transform(
            stream_of(gz, 5000),
            Op::Recompress(Algorithm::Gzip, Algorithm::Zstd, Some(1)),
            "t".into(),
        ))
        .await
        .unwrap();
        let back = collect(transform(
            stream_of(zst, 5000),
            Op::Decompress(Algorithm::Zstd),
            "t".into(),
        ))
        .await
        .unwrap();
        assert!(back == data);
    }

    #[tokio::test]
    async fn failures_surface() {
        let bad = collect(transform(
            stream_of(b"not gzip at all".to_vec(), 4),
            Op::Decompress(Algorithm::Gzip),
            "layer x".into(),
        ))
        .await;
        let e = bad.unwrap_err().to_string();
        assert!(e.contains("layer x"), "{e}");
        let failing: BlobStream = Box::pin(futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(Error::Refused("source went away".into())),
        ]));
        let e = collect(transform(
            failing,
            Op::Compress(Algorithm::Gzip, None),
            "l".into(),
        ))
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "source went away");
    }

    #[test]
    fn detects() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Detected::Gzip);
        assert_eq!(detect(b"BZh9"), Detected::Bzip2);
        assert_eq!(detect(b"ustar"), Detected::None);
        assert!("zstd:chunked".parse::<Algorithm>().is_err());
    }
}
