//! A tiny HTTP/1.1 server on 127.0.0.1 playing a package index: release JSON and wheels,
//! with switches to cut a transfer short or to ignore range requests, and a request log.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub range: Option<String>,
}

#[derive(Default)]
struct Route {
    body: Vec<u8>,
    /// Send only this many body bytes, then close, while `cuts_left` > 0.
    cut_after: usize,
    cuts_left: usize,
    ignore_range: bool,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    /// Per package, the file lists of its versions, for the project document.
    releases: HashMap<String, serde_json::Map<String, serde_json::Value>>,
    log: Vec<Logged>,
}

/// A file entry of a release description.
pub struct ReleaseFile {
    pub filename: String,
    pub packagetype: &'static str,
    pub sha256: String,
    pub size: usize,
}

pub struct FakeIndex {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeIndex {
    pub fn start() -> FakeIndex {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = Arc::clone(&state);
                    thread::spawn(move || serve(stream, &state));
                }
            })
        };
        FakeIndex {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_file(&self, path: &str, body: Vec<u8>) {
        let mut state = self.state.lock().unwrap();
        state.routes.insert(
            path.to_owned(),
            Route {
                body,
                ..Route::default()
            },
        );
    }

    /// Publishes `wheel` as the only file of `package` `version`; returns the wheel's path.
    pub fn publish(&self, package: &str, version: &str, wheel: Vec<u8>) -> String {
        let filename = format!("{}-{version}-py3-none-any.whl", package.replace('-', "_"));
        let file = ReleaseFile {
            filename: filename.clone(),
            packagetype: "bdist_wheel",
            sha256: sha256_hex(&wheel),
            size: wheel.len(),
        };
        self.publish_files(package, version, &[file]);
        let path = format!("/files/{filename}");
        self.add_file(&path, wheel);
        path
    }

    /// Serves a release description listing `files` (served from `/files/<filename>`).
    pub fn publish_files(&self, package: &str, version: &str, files: &[ReleaseFile]) {
        let urls: Vec<serde_json::Value> = files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "url": format!("{}/files/{}", self.url(), f.filename),
                    "filename": f.filename,
                    "packagetype": f.packagetype,
                    "digests": {"md5": "0", "sha256": f.sha256},
                    "size": f.size,
                })
            })
            .collect();
        let release =
            serde_json::json!({"info": {"name": package, "version": version}, "urls": urls});
        self.add_file(
            &format!("/pypi/{package}/{version}/json"),
            serde_json::to_vec(&release).unwrap(),
        );
        // The project document: the latest (last published) release plus all releases.
        let releases = {
            let mut state = self.state.lock().unwrap();
            let releases = state.releases.entry(package.to_owned()).or_default();
            releases.insert(version.to_owned(), serde_json::Value::Array(urls.clone()));
            releases.clone()
        };
        let project = serde_json::json!({
            "info": {"name": package, "version": version},
            "urls": urls,
            "releases": releases,
        });
        self.add_file(
            &format!("/pypi/{package}/json"),
            serde_json::to_vec(&project).unwrap(),
        );
    }

    /// Stops serving `path` (answers 404 from now on).
    pub fn remove_file(&self, path: &str) {
        self.state.lock().unwrap().routes.remove(path);
    }

    /// The next `times` requests of `path` send `after` body bytes and then close.
    pub fn cut(&self, path: &str, after: usize, times: usize) {
        let mut state = self.state.lock().unwrap();
        let route = state.routes.get_mut(path).expect("route exists");
        route.cut_after = after;
        route.cuts_left = times;
    }

    /// Requests of `path` are answered 200 with the whole body, whatever their range.
    pub fn ignore_range(&self, path: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .routes
            .get_mut(path)
            .expect("route exists")
            .ignore_range = true;
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn requests_of(&self, path: &str) -> Vec<Logged> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for FakeIndex {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_owned());
            }
        }
    }
    let response = respond(state, &path, range);
    let mut stream = reader.into_inner();
    let _ = stream.write_all(&response);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Builds the bytes to send for one request (head and body, possibly cut short).
fn respond(state: &Mutex<State>, path: &str, range: Option<String>) -> Vec<u8> {
    let mut state = state.lock().unwrap();
    state.log.push(Logged {
        path: path.to_owned(),
        range: range.clone(),
    });
    let Some(route) = state.routes.get_mut(path) else {
        return head("404 Not Found", 9, "")
            .into_iter()
            .chain(*b"not found")
            .collect();
    };
    let total = route.body.len();
    let start = match (&range, route.ignore_range) {
        (Some(range), false) => range
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|r| r.parse::<usize>().ok()),
        _ => None,
    };
    let (status, extra, body) = match start {
        Some(start) if start >= total => {
            let extra = format!("Content-Range: bytes */{total}\r\n");
            return head("416 Range Not Satisfiable", 0, &extra);
        }
        Some(start) => {
            let extra = format!("Content-Range: bytes {start}-{}/{total}\r\n", total - 1);
            ("206 Partial Content", extra, &route.body[start..])
        }
        None => ("200 OK", String::new(), &route.body[..]),
    };
    let mut out = head(status, body.len(), &extra);
    if route.cuts_left > 0 {
        route.cuts_left -= 1;
        out.extend_from_slice(&body[..route.cut_after.min(body.len())]);
    } else {
        out.extend_from_slice(body);
    }
    out
}

fn head(status: &str, length: usize, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {length}\r\nAccept-Ranges: bytes\r\n\
         Connection: close\r\n{extra}\r\n"
    )
    .into_bytes()
}
