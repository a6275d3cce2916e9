//! A raw HTTP/1.1 client over `std::net::TcpStream`, one connection per request.
//!
//! Tests need header values that are not UTF-8 and a fresh connection per request (so Envoy
//! spreads them over its workers); general clients refuse the first and pool the second. This
//! client writes exactly the bytes it is given and reads the answer until the server closes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// A request to send; header values are bytes and may be anything but CR or LF.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    /// Adds a header; the value is written byte for byte.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// The request's head: request line, headers (Host and Connection added when missing),
    /// Content-Length when there is a body, and the blank line.
    pub fn head(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path).into_bytes();
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if !has("host") {
            out.extend_from_slice(b"Host: localhost\r\n");
        }
        if !has("connection") {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        if !self.body.is_empty() && !has("content-length") {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// A response: status, headers (values lossy as text) and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` on a new connection to `addr` and reads the whole response.
pub fn send(addr: SocketAddr, request: &Request) -> io::Result<Response> {
    let mut stream = connect(addr)?;
    let mut bytes = request.head();
    bytes.extend_from_slice(&request.body);
    stream.write_all(&bytes)?;
    read_response(stream)
}

/// Sends a request whose body may be refused before it is all written (an oversized upload).
///
/// The body is written from another thread while this one reads, so an early answer such as
/// 413 is read before the server closes the connection; write errors are ignored.
pub fn send_streaming(addr: SocketAddr, request: &Request, body: Arc<Vec<u8>>) -> io::Result<u16> {
    let stream = connect(addr)?;
    let mut writer = stream.try_clone()?;
    let head = request.head();
    let written = std::thread::spawn(move || {
        let _ = writer.write_all(&head);
        for chunk in body.chunks(64 * 1024) {
            if writer.write_all(chunk).is_err() {
                break;
            }
        }
    });

    let status = read_status(&stream);
    let _ = stream.shutdown(Shutdown::Both);
    let _ = written.join();
    status
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn read_status(stream: &TcpStream) -> io::Result<u16> {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    parse_status_line(&line)
}

fn read_response(stream: TcpStream) -> io::Result<Response> {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let status = parse_status_line(&line)?;

    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_until(b'\n', &mut line)?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            break;
        }
        if let Some((name, value)) = text.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }

    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    response.body = read_body(&mut reader, &response)?;
    Ok(response)
}

fn read_body(reader: &mut impl BufRead, response: &Response) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        return read_chunked(reader);
    }
    match response.header("content-length").map(str::parse::<u64>) {
        Some(Ok(len)) => {
            reader.take(len).read_to_end(&mut body)?;
        }
        _ => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16).map_err(|_| bad(&line))?;
        if size == 0 {
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

fn parse_status_line(line: &[u8]) -> io::Result<u16> {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/") => Ok(status),
        _ => Err(bad(&text)),
    }
}

fn bad(text: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not an HTTP/1.1 response line: {text:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer).unwrap();
            seen
        });
        (addr, handle)
    }

    #[test]
    fn header_bytes_that_are_not_utf8_are_written_unchanged() {
        let (addr, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let request = Request::get("/x").header("x-api-key", b"k\xff\xfe");
        let response = send(addr, &request).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"ok");
        let seen = server.join().unwrap();
        let needle = b"x-api-key: k\xff\xfe";
        assert!(seen.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let answer =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let (addr, _server) = serve_once(answer);
        let response = send(addr, &Request::get("/")).unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.text(), "abc");
    }

    #[test]
    fn garbage_instead_of_a_status_line_is_an_error() {
        let (addr, _server) = serve_once(b"hello\r\n\r\n");
        assert!(send(addr, &Request::get("/")).is_err());
    }
}
