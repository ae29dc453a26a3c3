//! An HTTP forward proxy that only tunnels (`CONNECT host:port`), as corporate proxies in
//! front of OpenShift clusters do for HTTPS. It knows one made-up name,
//! [`PROXIED_HOST`](super::pki::PROXIED_HOST), as `127.0.0.1`, and records every request
//! line and `Proxy-Authorization` header it receives. Anything but `CONNECT` gets 405;
//! a target it does not know gets 502.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::pki::PROXIED_HOST;

/// One request the proxy received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRequest {
    /// `CONNECT registry.ferry.test:5000 HTTP/1.1`
    pub line: String,
    /// The `Proxy-Authorization` header, if any.
    pub authorization: Option<String>,
}

/// A running proxy on `127.0.0.1`; stopped when dropped.
pub struct ConnectProxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<ProxyRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let log = log.clone();
                    std::thread::spawn(move || serve(conn, &log));
                }
            })
        };
        ConnectProxy {
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT`
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<ProxyRequest>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("cloning the socket"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let line = line.trim_end().to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':')
            && k.eq_ignore_ascii_case("proxy-authorization")
        {
            authorization = Some(v.trim().to_string());
        }
    }
    log.lock().unwrap().push(ProxyRequest {
        line: line.clone(),
        authorization,
    });
    let mut client = conn;
    let mut parts = line.split(' ');
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let upstream = match target.rsplit_once(':') {
        Some((host, port)) if host == PROXIED_HOST || host == "127.0.0.1" => {
            TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap_or(0))).ok()
        }
        _ => None,
    };
    let Some(upstream) = upstream else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    // The reader first hands over what it buffered past the request head: the tunnel's
    // first bytes.
    let (mut up_w, mut up_r) = (upstream.try_clone().unwrap(), upstream);
    let mut client_w = client.try_clone().unwrap();
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut up_w);
        let _ = up_w.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up_r, &mut client_w);
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = up.join();
}
