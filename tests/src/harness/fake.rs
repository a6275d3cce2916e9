//! A stand-in collector that answers every batch with garbage, for tests of how filters bear a
//! collector gone wrong.
//!
//! It listens on a given loopback port (usually the real collector's, after stopping it), reads
//! each request whole and answers it with the next kind of [`Garbage`] in turn, then closes the
//! connection. It counts what it answered. Dropping it stops its thread and closes the port.

use plumbline_wire::{Action, BatchReply, ConsumerId, Decision, DecisionSet, Mode, Subject};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest request body the fake reads; a batch is far smaller in tests.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// The kinds of wrong answer, given in this order, round and round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// 200 with the batch content type and random bytes that are no batch reply.
    RandomBody,
    /// 200 with an empty body.
    EmptyBody,
    /// 200 with the first half of a real reply that carries a decision set.
    TruncatedReply,
    /// 500 with a text body.
    ServerError,
    /// Bytes that are not HTTP at all, then the connection closes.
    NotHttp,
}

impl Garbage {
    pub const ALL: [Garbage; 5] = [
        Garbage::RandomBody,
        Garbage::EmptyBody,
        Garbage::TruncatedReply,
        Garbage::ServerError,
        Garbage::NotHttp,
    ];
}

/// A running fake collector.
#[derive(Debug)]
pub struct FakeCollector {
    stop: Arc<AtomicBool>,
    answered: Arc<[AtomicU64; 5]>,
    thread: Option<JoinHandle<()>>,
}

impl FakeCollector {
    /// Listens on `127.0.0.1:port` and answers in a thread of its own.
    pub fn start(port: u16) -> io::Result<FakeCollector> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let answered: Arc<[AtomicU64; 5]> = Arc::new(Default::default());
        let thread = {
            let (stop, answered) = (stop.clone(), answered.clone());
            std::thread::spawn(move || serve(&listener, &stop, &answered))
        };
        Ok(FakeCollector {
            stop,
            answered,
            thread: Some(thread),
        })
    }

    /// Requests answered with `kind` so far.
    pub fn answered(&self, kind: Garbage) -> u64 {
        let index = Garbage::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.answered[index].load(Ordering::Relaxed)
    }

    /// Requests answered so far, of every kind.
    pub fn answered_total(&self) -> u64 {
        self.answered
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }
}

impl Drop for FakeCollector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, answered: &[AtomicU64; 5]) {
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let kind = Garbage::ALL[next % Garbage::ALL.len()];
                if answer(stream, kind).is_ok() {
                    answered[next % Garbage::ALL.len()].fetch_add(1, Ordering::Relaxed);
                    next += 1;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Reads one request and answers it with `kind`, then closes the connection.
fn answer(mut stream: TcpStream, kind: Garbage) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    read_request(&stream)?;
    let response = match kind {
        Garbage::RandomBody => http_200(&random_body()),
        Garbage::EmptyBody => http_200(&[]),
        Garbage::TruncatedReply => {
            let reply = reply_with_a_set();
            http_200(&reply[..reply.len() / 2])
        }
        Garbage::ServerError => {
            let body = b"internal trouble";
            let mut out = format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(body);
            out
        }
        Garbage::NotHttp => b"\x00\x01garbage, not HTTP\xff\xfe\r\n\r\n".to_vec(),
    };
    stream.write_all(&response)?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// Reads a request head and its `content-length` body.
fn read_request(stream: &TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut length = 0u64;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = Vec::new();
    reader.take(length.min(MAX_BODY)).read_to_end(&mut body)?;
    Ok(())
}

fn http_200(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        plumbline_wire::CONTENT_TYPE,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Bytes that cannot decode as a reply: they open with a varint longer than a `u16` allows.
fn random_body() -> Vec<u8> {
    let mut body = vec![0xff, 0xff, 0xff, 0xff];
    let len = 16 + rand::random::<u8>() as usize;
    body.extend((0..len).map(|_| rand::random::<u8>()));
    body
}

/// A real reply carrying a set of 50 decisions in enforce mode at a high version.
fn reply_with_a_set() -> Vec<u8> {
    let decisions = (0..50u8)
        .map(|n| Decision {
            id: 9_000 + u64::from(n),
            subject: Subject::Consumer(ConsumerId([n; 16])),
            action: Action::Block { status: 403 },
            expires_at_ms: u64::MAX / 2,
        })
        .collect();
    let mut reply = BatchReply::new(0, false, 1_000_000);
    reply.decisions = Some(DecisionSet {
        version: 1_000_000,
        mode: Mode::Enforce,
        decisions,
    });
    reply.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn post(port: u16) -> io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream
            .write_all(b"POST /v1/batches HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn every_kind_of_garbage_is_answered_in_turn_and_none_decodes_as_a_reply() {
        let port = super::super::free_port();
        let fake = FakeCollector::start(port).unwrap();
        let mut answers = Vec::new();
        for _ in 0..Garbage::ALL.len() {
            answers.push(post(port).unwrap());
        }
        assert!(answers[0].starts_with(b"HTTP/1.1 200 OK"));
        assert!(answers[3].starts_with(b"HTTP/1.1 500"));
        assert!(!answers[4].starts_with(b"HTTP/"));
        for answer in &answers[..3] {
            let at = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert!(BatchReply::decode(&answer[at..]).is_err());
        }
        // The server counts an answer after closing its connection, so the client can read the
        // last answer before it is counted: this assertion raced and failed now and then.
        let counted = Instant::now() + Duration::from_secs(5);
        while fake.answered_total() < Garbage::ALL.len() as u64 && Instant::now() < counted {
            std::thread::sleep(Duration::from_millis(5));
        }
        for kind in Garbage::ALL {
            assert_eq!(fake.answered(kind), 1, "{kind:?}");
        }
        assert!(BatchReply::decode(&reply_with_a_set()).is_ok());
    }
}
