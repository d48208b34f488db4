//! `cbnn data fetch` against a small HTTP server started by the test on 127.0.0.1.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use cbnn::data::fetch::{self, Outcome, RemoteDataset, RemoteFile};

/// What the server saw: one (path, Range header) per request.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Serves `files` (name -> bytes). The first request for a name in `cut` sends only half of
/// the body and drops the connection, as a flaky network would. Honours `Range: bytes=N-`.
fn serve(files: Vec<(String, Vec<u8>)>, cut: Vec<String>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        let mut cut = cut;
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let mut range = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = Some(v.trim().trim_end_matches('-').to_string());
                }
            }
            seen.lock().unwrap().push((path.clone(), range.clone()));
            let Some((_, body)) = files.iter().find(|(n, _)| *n == path) else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let start: usize = range.as_deref().map_or(0, |r| r.parse().unwrap());
            let part = &body[start..];
            let status = if start > 0 {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\n",
                    body.len() - 1,
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\n".to_string()
            };
            let head = format!(
                "{status}Content-Length: {}\r\nConnection: close\r\n\r\n",
                part.len()
            );
            let _ = stream.write_all(head.as_bytes());
            if let Some(pos) = cut.iter().position(|c| *c == path) {
                cut.remove(pos);
                let _ = stream.write_all(&part[..part.len() / 2]);
                let _ = stream.flush();
                continue; // connection dropped mid-body
            }
            let _ = stream.write_all(part);
        }
    });
    (format!("http://{addr}/"), log)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn fixture_files() -> (Vec<(String, Vec<u8>)>, Vec<RemoteFile>) {
    let (px, lb) = synthetic(300, 8, 10, 4);
    let images = cbnn::data::idx::encode(&[300, 8, 8], &px);
    let labels = cbnn::data::idx::encode(&[300], &lb);
    let served = vec![
        ("train-images-idx3-ubyte.gz".to_string(), gz(&images)),
        ("train-labels-idx1-ubyte.gz".to_string(), gz(&labels)),
    ];
    let remote = vec![
        RemoteFile {
            name: served[0].0.clone(),
            md5: fetch::md5_hex(&images),
        },
        RemoteFile {
            name: served[1].0.clone(),
            md5: fetch::md5_hex(&labels),
        },
    ];
    (served, remote)
}

#[test]
fn downloads_resumes_after_a_dropped_connection_and_verifies() {
    let (served, remote) = fixture_files();
    let (url, log) = serve(served.clone(), vec![served[0].0.clone()]);
    let ds = RemoteDataset {
        name: "fixture".into(),
        mirrors: vec![url],
        files: remote,
    };
    let dir = temp_dir("fetch-ok");
    let mut lines = Vec::new();
    let outcomes = fetch::fetch(&ds, &dir, None, &mut |l| lines.push(l.to_string())).unwrap();
    assert!(matches!(outcomes[0].1, Outcome::Downloaded { .. }));
    for (name, bytes) in &served {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes);
    }
    // The dropped first download was resumed with a range request for the missing half.
    let log = log.lock().unwrap().clone();
    let first: Vec<_> = log.iter().filter(|(p, _)| *p == served[0].0).collect();
    assert_eq!(first.len(), 2, "{log:?}");
    assert_eq!(first[0].1, None);
    assert_eq!(
        first[1].1.as_deref(),
        Some((served[0].1.len() / 2).to_string().as_str())
    );
    // No partial files remain.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty());
    // A second fetch finds everything present and downloads nothing.
    let outcomes = fetch::fetch(&ds, &dir, None, &mut |_| {}).unwrap();
    assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Present));
}

#[test]
fn checksum_mismatch_is_a_failed_check_and_leaves_nothing() {
    let (served, mut remote) = fixture_files();
    remote[1].md5 = "00000000000000000000000000000000".into();
    let (url, _) = serve(served.clone(), vec![]);
    let ds = RemoteDataset {
        name: "fixture".into(),
        mirrors: vec![url],
        files: remote,
    };
    let dir = temp_dir("fetch-bad");
    let err = fetch::fetch(&ds, &dir, None, &mut |_| {}).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains("train-labels-idx1-ubyte.gz: checksum mismatch"),
        "{msg}"
    );
    assert!(
        msg.contains("expected 00000000000000000000000000000000"),
        "{msg}"
    );
    assert!(!dir.join("train-labels-idx1-ubyte.gz").exists());
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["train-images-idx3-ubyte.gz".to_string()],
        "only the verified file stays"
    );
}

#[test]
fn cli_fetch_with_mirror_and_missing_file() {
    // The CLI knows the real checksums, so a mirror serving other bytes must fail the check.
    let (served, _) = fixture_files();
    let (url, _) = serve(served, vec![]);
    let dir = temp_dir("fetch-cli");
    let out = cbnn(&[
        "data",
        "fetch",
        "mnist",
        "--dir",
        dir.to_str().unwrap(),
        "--mirror",
        &url,
    ]);
    assert_fails(&out, 1, "checksum mismatch");
    let out = cbnn(&["data", "fetch", "cifar-99", "--dir", dir.to_str().unwrap()]);
    assert_fails(&out, 2, "unknown dataset 'cifar-99'");
}

/// A response that goes on past the most a dataset file may take is cut there and discarded:
/// nothing is kept "for resuming", the same mirror is not asked again, and the error says so.
#[test]
fn an_endless_response_is_cut_at_the_cap_and_nothing_is_kept() {
    let (_, remote) = fixture_files();
    let huge = vec![0u8; fetch::MAX_FILE_BYTES as usize + (1 << 20)];
    let (url, log) = serve(vec![(remote[0].name.clone(), huge)], vec![]);
    let ds = RemoteDataset {
        name: "fixture".into(),
        mirrors: vec![url],
        files: remote,
    };
    let dir = temp_dir("fetch-endless");
    let err = fetch::fetch(&ds, &dir, None, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("goes on past 256 MiB"), "{msg}");
    assert!(!msg.contains("kept for resuming"), "{msg}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "something was kept"
    );
    assert_eq!(log.lock().unwrap().len(), 1, "the mirror was asked again");
}
