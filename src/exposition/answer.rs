//! The `/metrics` answer's text held in pieces of at most [`CHUNK`] bytes
//! rather than one string, and the HTTP body that sends them.
//!
//! A megabyte-sized answer in one allocation cannot reuse the memory the
//! scrape's engine calls have just given back (many buffers of a few
//! kilobytes), so it would add its whole size to the process's peak; pieces
//! of this size fit there, and each is freed once written to the socket.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Size of one piece.
pub const CHUNK: usize = 32 * 1024;

/// Text written through [`fmt::Write`], kept in pieces.
#[derive(Debug, Default)]
pub struct Chunks {
    done: VecDeque<Bytes>,
    current: Vec<u8>,
    len: usize,
}

impl Chunks {
    /// No text yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before anything is written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn seal(&mut self) {
        if !self.current.is_empty() {
            let full = std::mem::take(&mut self.current);
            self.done.push_back(Bytes::from(full));
        }
    }

    /// The answer as a body of known length (sent with `Content-Length`).
    pub fn into_body(mut self) -> ChunksBody {
        self.seal();
        ChunksBody {
            left: self.len as u64,
            chunks: self.done,
        }
    }

    /// The whole text in one string.
    pub fn into_string(mut self) -> String {
        self.seal();
        let mut out = Vec::with_capacity(self.len);
        for c in &self.done {
            out.extend_from_slice(c);
        }
        // Only `write_str` fills the pieces, and pieces are cut between
        // whole strings, so the bytes are UTF-8.
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }
}

impl fmt::Write for Chunks {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.current.len() + s.len() > CHUNK {
            self.seal();
        }
        if self.current.capacity() == 0 {
            self.current.reserve_exact(CHUNK.max(s.len()));
        }
        self.current.extend_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// The pieces as an HTTP body whose length is known up front.
#[derive(Debug)]
pub struct ChunksBody {
    chunks: VecDeque<Bytes>,
    left: u64,
}

impl Body for ChunksBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let next = self.chunks.pop_front();
        if let Some(chunk) = &next {
            self.left -= chunk.len() as u64;
        }
        Poll::Ready(next.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fmt::Write as _;

    #[test]
    fn pieces_hold_the_text_in_order_and_the_body_knows_its_length() {
        let mut c = Chunks::new();
        let line = "container_memory_usage_bytes{name=\"web\"} 12345\n";
        let mut want = String::new();
        for i in 0..3000 {
            write!(c, "{i}:{line}").unwrap();
            write!(want, "{i}:{line}").unwrap();
        }
        assert_eq!(c.len(), want.len());
        assert!(want.len() > 4 * CHUNK);
        let body = c.into_body();
        assert_eq!(body.size_hint().exact(), Some(want.len() as u64));
        assert!(body.chunks.iter().all(|p| p.len() <= CHUNK));
        let joined: Vec<u8> = body.chunks.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(joined, want.as_bytes());
    }

    #[test]
    fn a_string_longer_than_a_piece_stays_whole() {
        let mut c = Chunks::new();
        let long = "x".repeat(CHUNK * 2 + 5);
        c.write_str("a").unwrap();
        c.write_str(&long).unwrap();
        c.write_str("b").unwrap();
        assert_eq!(c.into_string(), format!("a{long}b"));
    }
}
