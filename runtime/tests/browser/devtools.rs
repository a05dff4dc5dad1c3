//! Just enough of Chromium's DevTools protocol to drive one page: open it, evaluate script in
//! it, wait on it, take its picture, and read its network events. Over
//! `--remote-debugging-pipe` (JSON messages ended by a NUL byte on the browser's fds 3 and
//! 4), so no websocket client and no port to find.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Headless Chromium as this machine runs it: root, no GPU, and no calls home (the closed
/// network refuses them, many at a time).
pub const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

/// How long one protocol command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A browser with one page attached.
pub struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: BufReader<ChildStdout>,
    /// The message being read: kept here, so that a wait given up mid-message loses nothing.
    partial: Vec<u8>,
    next_id: u64,
    session: String,
    /// Answers read while waiting for another, by command id.
    answers: HashMap<u64, Value>,
    /// The page's events, oldest first, kept until taken.
    events: VecDeque<Value>,
    profile: PathBuf,
    log: PathBuf,
}

impl Browser {
    /// Starts Chromium on a profile of its own (`name`), with one blank page `width` ×
    /// `height`.
    pub async fn launch(name: &str, width: u32, height: u32) -> Self {
        // The last run's, if it failed, is cleared first.
        let profile = PathBuf::from(format!("{}/chromium-{name}", env!("CARGO_TARGET_TMPDIR")));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let log = profile.with_extension("log");
        let stderr = std::fs::File::create(&log).unwrap();
        // The pipe is the browser's fds 3 (commands) and 4 (answers): the shell moves our
        // stdin and stdout there, then becomes Chromium.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 3<&0 4>&1 </dev/null >/dev/null; exec chromium "$@""#)
            .arg("chromium")
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--remote-debugging-pipe")
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("chromium runs (apt-get install chromium)");
        let mut browser = Browser {
            to_browser: child.stdin.take().unwrap(),
            from_browser: BufReader::new(child.stdout.take().unwrap()),
            child,
            partial: Vec::new(),
            next_id: 0,
            session: String::new(),
            answers: HashMap::new(),
            events: VecDeque::new(),
            profile,
            log,
        };
        let target = browser
            .browser_call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = browser
            .browser_call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser.call("Page.enable", json!({})).await;
        browser.call("Network.enable", json!({})).await;
        let size =
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false});
        browser
            .call("Emulation.setDeviceMetricsOverride", size)
            .await;
        browser
    }

    /// Loads `url` in the page and waits for its load event.
    pub async fn open(&mut self, url: &str) {
        self.take_events("Page.loadEventFired");
        let navigated = self.call("Page.navigate", json!({"url": url})).await;
        assert!(navigated.get("errorText").is_none(), "{navigated}");
        self.event("Page.loadEventFired", |_| true, COMMAND_TIMEOUT)
            .await;
    }

    /// The value of `expression` in the page; a promise is awaited. A script error fails.
    pub async fn evaluate(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
        let result = self.call("Runtime.evaluate", params).await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits, for at most `within`, until `condition` (an expression) is truthy in the page,
    /// checking it on every change of the page's DOM rather than on a clock; returns its value.
    pub async fn until(&mut self, condition: &str, within: Duration) -> Value {
        let expression = format!(
            "new Promise((resolve) => {{
               const value = () => ({condition});
               const observer = new MutationObserver(() => {{
                 const now = value();
                 if (now) {{ observer.disconnect(); resolve(now); }}
               }});
               const now = value();
               if (now) resolve(now);
               else observer.observe(document, {{subtree: true, childList: true,
                                                 characterData: true, attributes: true}});
             }})"
        );
        match tokio::time::timeout(within, self.evaluate(&expression)).await {
            Ok(value) => value,
            Err(_) => panic!(
                "not within {within:?}: {condition}\nthe page: {}",
                self.page_text().await
            ),
        }
    }

    /// What the page shows, for a failure's message.
    pub async fn page_text(&mut self) -> Value {
        self.evaluate("document.body.innerText").await
    }

    /// A PNG of the page as shown.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }

    /// Takes the page's events named `method` received so far.
    pub fn take_events(&mut self, method: &str) -> Vec<Value> {
        let (taken, kept) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|event| event["method"] == method);
        self.events = kept;
        taken
            .into_iter()
            .map(|event| event["params"].clone())
            .collect()
    }

    /// Closes the browser and waits for it to exit.
    pub async fn close(mut self) {
        let id = self.send(None, "Browser.close", json!({})).await;
        // The answer may not come before the pipe closes: either ends it.
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, self.answer(id)).await;
        let exited = tokio::time::timeout(COMMAND_TIMEOUT, self.child.wait()).await;
        assert!(exited.is_ok(), "chromium did not exit");
        let _ = std::fs::remove_dir_all(&self.profile);
        let _ = std::fs::remove_file(&self.log);
    }

    /// A command to the page's session; its result.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        let id = self.send(Some(&session), method, params).await;
        self.result(method, id).await
    }

    /// A command to the browser itself; its result.
    async fn browser_call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(None, method, params).await;
        self.result(method, id).await
    }

    async fn result(&mut self, method: &str, id: u64) -> Value {
        let answer = match tokio::time::timeout(COMMAND_TIMEOUT, self.answer(id)).await {
            Ok(answer) => answer,
            Err(_) => panic!("{method}: no answer within {COMMAND_TIMEOUT:?}"),
        };
        match answer.get("error") {
            Some(error) => panic!("{method}: {error}"),
            None => answer["result"].clone(),
        }
    }

    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .await
            .unwrap_or_else(|err| panic!("{method}: the browser is gone ({err}); {}", self.log()));
        self.next_id
    }

    /// Reads messages until the answer to command `id`, keeping the others.
    async fn answer(&mut self, id: u64) -> Value {
        loop {
            if let Some(answer) = self.answers.remove(&id) {
                return answer;
            }
            self.read().await;
        }
    }

    /// Waits for the page's next event named `method` whose parameters `matches`, for at most
    /// `within`; returns its parameters.
    pub async fn event(
        &mut self,
        method: &str,
        matches: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Value {
        let wait = async {
            loop {
                let found = self
                    .events
                    .iter()
                    .position(|e| e["method"] == method && matches(&e["params"]));
                if let Some(at) = found {
                    return self.events.remove(at).unwrap()["params"].clone();
                }
                self.read().await;
            }
        };
        match tokio::time::timeout(within, wait).await {
            Ok(params) => params,
            Err(_) => panic!("no {method} within {within:?}"),
        }
    }

    /// Reads one message from the browser.
    async fn read(&mut self) {
        let read = self
            .from_browser
            .read_until(0, &mut self.partial)
            .await
            .unwrap();
        let mut bytes = std::mem::take(&mut self.partial);
        assert!(
            read > 0 && bytes.pop() == Some(0),
            "the browser closed its pipe; {}",
            self.log()
        );
        let message: Value = serde_json::from_slice(&bytes).unwrap();
        match message["id"].as_u64() {
            Some(id) => {
                self.answers.insert(id, message);
            }
            None if message["sessionId"] == self.session.as_str() => self.events.push_back(message),
            None => {} // The browser's own events (targets coming and going).
        }
    }

    fn log(&self) -> String {
        format!("its stderr is in {}", self.log.display())
    }
}
