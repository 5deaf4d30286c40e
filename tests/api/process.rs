//! `guichet serve` as a real process (for what only a process shows: signals, kill -9).

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use guichet::config::Settings;

/// A running `guichet serve`, its port and what it logs.
pub struct Served {
    pub child: Child,
    pub port: u16,
    pub log: Arc<Mutex<String>>,
}

/// The environment that points a process at the stores and keys of `s` (a test's settings).
pub fn env_of(s: &Settings) -> Vec<(String, String)> {
    let mut env = vec![
        ("DATABASE_URL".to_string(), s.database.url.clone()),
        ("GUICHET_KEYS__DIR".to_string(), s.keys.dir.display().to_string()),
        ("GUICHET_PASSWORD__ARGON2_MEMORY_KIB".to_string(), "1024".to_string()),
        ("GUICHET_PASSWORD__ARGON2_ITERATIONS".to_string(), "1".to_string()),
        ("GUICHET_SERVER__METRICS_LISTEN".to_string(), "127.0.0.1:0".to_string()),
    ];
    if let Some(r) = &s.redis.url {
        env.push(("REDIS_URL".into(), r.clone()));
        env.push(("GUICHET_REDIS__KEY_PREFIX".into(), s.redis.key_prefix.clone()));
    }
    env
}

impl Served {
    /// Starts `guichet serve` on a free port (it binds port 0 and logs the address) in `dir`,
    /// and waits until it is ready.
    pub async fn start(env: &[(String, String)], dir: &std::path::Path) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_guichet"))
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("GUICHET_SERVER__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        {
            let log = log.clone();
            let mut stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = std::io::Read::read(&mut stderr, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut port = None;
        for _ in 0..150 {
            assert!(child.try_wait().unwrap().is_none(), "guichet serve exited: {}", log.lock().unwrap());
            let text = strip_ansi(&log.lock().unwrap());
            if let Some(line) = text.lines().find(|l| l.contains("guichet listening")) {
                let at = line.find("addr=127.0.0.1:").map(|i| i + "addr=127.0.0.1:".len());
                port = at
                    .and_then(|i| line[i..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let port = port.expect("the server logs the address it listens on");
        let served = Served { child, port, log };
        for _ in 0..100 {
            if reqwest::get(served.url("/readyz")).await.map(|r| r.status() == 200).unwrap_or(false) {
                return served;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("server never became ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What it logged so far.
    pub fn logs(&self) -> String {
        strip_ansi(&self.log.lock().unwrap())
    }

    /// `kill -9`: the process ends at once, whatever it was doing.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Text without ANSI colour sequences.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}
