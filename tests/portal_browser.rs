//! The example portal in headless Chromium, driven over WebDriver (fantoccini +
//! chromedriver): a member registers through every screen and logs in with the 暗証キー;
//! and closing the 暗証キー screen (closing the tab, or navigating away) kills the code.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`; override with `CHROME_BIN` / `CHROMEDRIVER`) and a Japanese
//! font (`fonts-noto-cjk`) for readable screenshots. Without the browser the tests FAIL
//! with the install command — they never skip. They run with `--features browser-tests`
//! (as `.ci/run` does after installing the browser), so the plain `cargo test` of the
//! README works on a machine without Chromium.
//!
//! Screenshots of every main screen, at phone (390×844) and desktop (1280×900) widths,
//! go to `target/screenshots/`; a failing scenario adds `FAILED-*.png` and its HTML.
#![cfg(feature = "browser-tests")]

#[allow(dead_code)]
#[path = "../examples/portal/app.rs"]
mod app;
mod portal_support;

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use kenpo_auth::ports::AuditKind;
use kenpo_auth::testkit::{ManualClock, RecordingAudit};
use portal_support::Outbox;
use serde_json::json;

type Outcome<T = ()> = Result<T, Box<dyn Error + Send + Sync>>;

const CHROME_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
    "--lang=ja-JP",
    "--window-size=1280,900",
];

const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

fn tool(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "{} not found (set {env} to override). The browser tests need Debian's Chromium and \
         ChromeDriver: `apt-get update && apt-get install -y chromium chromium-driver \
         fonts-noto-cjk`",
        path.display()
    );
    path
}

/// `target/screenshots/`, next to the test binary's `target/<profile>/deps/`.
fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// The portal on a random loopback port, with its outbox in a temporary folder.
struct Server {
    base: String,
    app_portal: kenpo_auth::Portal,
    outbox: Outbox,
    audit: RecordingAudit,
    /// The server's clock when the test stops time (see [`Options::manual_clock`]).
    clock: Option<ManualClock>,
    /// Form posts the server received, by path (see [`Options::post_delay`]).
    posts: Arc<Mutex<HashMap<String, usize>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn posts_to(&self, path: &str) -> usize {
        self.posts.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

#[derive(Default)]
struct Options {
    /// Run the server on a ManualClock the test moves.
    manual_clock: bool,
    /// A slow network: every form post's answer leaves the server this much later
    /// (after the handler did its work), so a second tap comes before the first answer.
    post_delay: Option<Duration>,
    /// Serve the development mailbox.
    dev_mailbox: bool,
    /// Name the server `localhost` instead of `127.0.0.1` (a WebAuthn relying party
    /// needs a domain).
    localhost: bool,
}

async fn start_portal() -> Server {
    start_portal_with(Options::default()).await
}

async fn start_portal_with(options: Options) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let host = if options.localhost {
        "localhost"
    } else {
        "127.0.0.1"
    };
    let base = format!("http://{host}:{}", addr.port());
    let audit = RecordingAudit::new();
    let mut config = app::AppConfig::new(base.clone(), dir.path().join("outbox"));
    config.audit = Some(Arc::new(audit.clone()));
    config.dev_mailbox = options.dev_mailbox;
    let clock = options.manual_clock.then(|| {
        let clock = ManualClock::new(time::OffsetDateTime::now_utc());
        config.clock = Arc::new(clock.clone());
        clock
    });
    let app = app::build(config).unwrap();
    let portal = app.portal.clone();
    let posts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counted = posts.clone();
    let delay = options.post_delay;
    let router = app.router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let counted = counted.clone();
            async move {
                let post = req.method() == axum::http::Method::POST;
                if post {
                    *counted
                        .lock()
                        .unwrap()
                        .entry(req.uri().path().to_owned())
                        .or_default() += 1;
                }
                let resp = next.run(req).await;
                if post && let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                resp
            }
        },
    ));
    tokio::spawn(app::serve::serve(
        listener,
        router,
        app::serve::HEADER_READ_TIMEOUT,
        std::future::pending(),
    ));
    Server {
        base,
        app_portal: portal,
        outbox: Outbox::new(dir.path().join("outbox")),
        audit,
        clock,
        posts,
        _dir: dir,
    }
}

/// chromedriver on a free port and a WebDriver session in headless Chromium.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

async fn start_browser() -> Browser {
    let chromium = tool("CHROME_BIN", "/usr/bin/chromium");
    let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let driver = tokio::process::Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = CHROME_FLAGS.iter().map(|s| (*s).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": args }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("WebDriver session in {}: {e}", chromium.display()));
    Browser {
        client,
        _driver: driver,
        _profile: profile,
    }
}

fn ensure(cond: bool, what: impl Into<String>) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(what.into().into())
    }
}

/// A Chrome DevTools command through chromedriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// Makes the page's viewport `w`×`h` CSS pixels (a phone width below the smallest
/// window Chrome allows, too), as a phone (`mobile`) or a desktop browser.
async fn emulate(c: &Client, w: u32, h: u32, mobile: bool) -> Outcome {
    c.issue_cmd(Cdp {
        cmd: "Emulation.setDeviceMetricsOverride",
        params: json!({ "width": w, "height": h, "deviceScaleFactor": 1, "mobile": mobile }),
    })
    .await?;
    Ok(())
}

/// axe-core (from npm), installed on first use into `target/axe/` with `npm install`:
/// the browser suite needs it, so a failed install fails the test — it never skips.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let dir = screenshot_dir()
            .parent()
            .map(|t| t.join("axe"))
            .unwrap_or_else(|| PathBuf::from("target/axe"));
        let file = dir.join("node_modules/axe-core/axe.min.js");
        if !file.exists() {
            std::fs::create_dir_all(&dir).expect("create target/axe");
            let status = std::process::Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg("axe-core@4")
                .status()
                .unwrap_or_else(|e| {
                    panic!("npm not found ({e}): the browser suite needs axe-core from npm (apt-get install -y npm)")
                });
            assert!(status.success(), "npm install axe-core failed: {status}");
        }
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
    })
}

/// Runs axe-core on the page as it is and fails on any violation, naming the rules and
/// the elements.
async fn axe_clean(c: &Client, screen: &str) -> Outcome {
    c.execute(axe_source(), vec![]).await?;
    let found = c
        .execute_async(
            "var done = arguments[arguments.length - 1];\
             axe.run(document).then(function (r) {\
               done(r.violations.map(function (v) {\
                 return v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(function (n) {\
                   return n.target.join(' ');\
                 }).join(', ');\
               }));\
             }, function (e) { done(['axe failed: ' + e]); });",
            vec![],
        )
        .await?;
    let violations: Vec<String> = serde_json::from_value(found)?;
    ensure(
        violations.is_empty(),
        format!("axe-core on {screen}: {violations:#?}"),
    )
}

/// Submits the form `form_css` twice, the second time 300 ms later, as a double tap on a
/// slow network does: the first request is on its way (and its answer late) when the
/// browser replaces it with the second.
async fn double_submit(c: &Client, form_css: &str) -> Outcome {
    c.execute(
        "var form = document.querySelector(arguments[0]);\
         form.requestSubmit();\
         window.setTimeout(function () { form.requestSubmit(); }, 300);",
        vec![json!(form_css)],
    )
    .await?;
    Ok(())
}

/// The page lifecycle of a phone that switched apps: `frozen` (no events, no timers),
/// then `active` again.
async fn lifecycle(c: &Client, state: &str) -> Outcome {
    c.issue_cmd(Cdp {
        cmd: "Page.setWebLifecycleState",
        params: json!({ "state": state }),
    })
    .await?;
    Ok(())
}

/// Screenshots the whole page at desktop and phone size: the viewport is made as tall
/// as the page for the shot (WebDriver screenshots only the viewport), then restored.
async fn shoot(c: &Client, name: &str) -> Outcome {
    axe_clean(c, name).await?;
    let dir = screenshot_dir();
    for (label, (w, h), mobile) in [("desktop", DESKTOP, false), ("phone", PHONE, true)] {
        emulate(c, w, h, mobile).await?;
        let height = c
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight);",
                vec![],
            )
            .await?
            .as_u64()
            .unwrap_or(u64::from(h));
        let full = u32::try_from(height).unwrap_or(h).clamp(h, 4000);
        if full > h {
            emulate(c, w, full, mobile).await?;
        }
        let png = c.screenshot().await?;
        std::fs::write(dir.join(format!("{name}-{label}.png")), png)?;
    }
    c.issue_cmd(Cdp {
        cmd: "Emulation.clearDeviceMetricsOverride",
        params: json!({}),
    })
    .await?;
    Ok(())
}

/// Runs a scenario; on failure saves a screenshot and the page's HTML, then fails the
/// test with the scenario's error.
async fn run(name: &str, browser: &Browser, scenario: impl Future<Output = Outcome>) {
    if let Err(e) = scenario.await {
        let dir = screenshot_dir();
        if let Ok(png) = browser.client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("FAILED-{name}.png")), png);
        }
        if let Ok(html) = browser.client.source().await {
            let _ = std::fs::write(dir.join(format!("FAILED-{name}.html")), html);
        }
        // End the browser before failing: chromedriver dies with the test, and a
        // Chromium it never told to quit would outlive the run.
        browser.client.clone().close().await.ok();
        panic!(
            "{name} failed: {e} (see {}/FAILED-{name}.png)",
            dir.display()
        );
    }
}

async fn text_of(c: &Client, css: &str) -> Outcome<String> {
    let el = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await?;
    Ok(el.text().await?)
}

async fn fill(c: &Client, css: &str, value: &str) -> Outcome {
    let el = c.find(Locator::Css(css)).await?;
    el.clear().await?;
    el.send_keys(value).await?;
    Ok(())
}

async fn click(c: &Client, css: &str) -> Outcome {
    c.find(Locator::Css(css)).await?.click().await?;
    Ok(())
}

/// Waits until the page's path is `path` (query ignored).
async fn on_path(c: &Client, path: &str) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = c.current_url().await?;
        if url.path() == path {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("expected {path}, still on {url}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn page_contains(c: &Client, needle: &str) -> Outcome {
    let body = text_of(c, "body").await?;
    ensure(
        body.contains(needle),
        format!("page does not say {needle:?}:\n{body}"),
    )
}

const EMAIL: &str = "taro.yamada-demo@docomo.ne.jp";
const LOGIN_ID: &str = "yamada-taro";
const PASSWORD: &str = "hanami-Bento-7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_registers_through_every_screen_and_logs_in_with_the_otp() {
    let server = start_portal().await;
    let browser = start_browser().await;
    run(
        "registration",
        &browser,
        registration_journey(&server, &browser.client),
    )
    .await;
    browser.client.clone().close().await.ok();
}

async fn registration_journey(s: &Server, c: &Client) -> Outcome {
    // ログイン → 新規利用登録
    c.goto(&format!("{}/", s.base)).await?;
    on_path(c, "/login").await?;
    page_contains(c, "登録したログインIDとパスワードでログインしてください。").await?;
    page_contains(c, "ログインID・パスワードを忘れた方はこちら").await?;
    shoot(c, "01-login").await?;
    click(c, "#register").await?;
    on_path(c, "/register").await?;
    shoot(c, "02-register-email").await?;

    // R1: メールアドレス入力 → 送信完了 (a docomo address shows the carrier advisory)
    fill(c, "#email", EMAIL).await?;
    click(c, "#register-submit").await?;
    text_of(c, "#sent").await?;
    page_contains(c, "★ご家族と重複するメールアドレスは使用できません。").await?;
    page_contains(c, "★迷惑メール設定をされている方は").await?;
    text_of(c, "#carrier-advisory").await?;
    shoot(c, "03-register-sent").await?;

    // R2: link 1 — the token leaves the address bar (303), the page only inspects.
    let link1 = s.outbox.next("registration_link");
    ensure(link1.to == EMAIL, format!("link 1 sent to {}", link1.to))?;
    c.goto(&link1.link()).await?;
    on_path(c, "/registration/link").await?;
    let url = c.current_url().await?;
    ensure(
        url.query().is_none(),
        format!("token still in the URL: {url}"),
    )?;
    page_contains(c, "事前登録がお済みの方").await?;
    shoot(c, "04-link1-landing").await?;
    click(c, "#to-identity").await?;
    on_path(c, "/registration/identity").await?;
    page_contains(c, "すべて半角文字で入力してください。").await?;
    click(c, "details.where summary").await?;
    shoot(c, "05-identity").await?;

    // R3: a wrong date first — the library's Japanese message — then the right one.
    fill(c, "#card_symbol", "999").await?;
    fill(c, "#card_number", "123456").await?;
    fill(c, "#card_branch", "00").await?;
    fill(c, "#birth_date", "1985-04-21").await?;
    click(c, "#identity-submit").await?;
    let error = text_of(c, "#error").await?;
    ensure(
        error.contains("本人確認ができませんでした"),
        format!("identity error: {error}"),
    )?;
    // What the member typed is still there, and the fields say they are in error.
    let kept = c
        .find(Locator::Css("#card_number"))
        .await?
        .prop("value")
        .await?;
    ensure(kept.as_deref() == Some("123456"), format!("kept: {kept:?}"))?;
    let invalid = c
        .find(Locator::Css("#card_number"))
        .await?
        .attr("aria-invalid")
        .await?;
    ensure(
        invalid.as_deref() == Some("true"),
        "aria-invalid on the card",
    )?;
    shoot(c, "05b-identity-error").await?;
    fill(c, "#birth_date", "1985-04-12").await?;
    click(c, "#identity-submit").await?;
    let auth_key = text_of(c, "#auth-key").await?;
    ensure(auth_key.len() == 8, format!("認証キー {auth_key:?}"))?;
    page_contains(c, "必ず控えてください").await?;
    shoot(c, "06-auth-key").await?;

    // R4: link 2 + 認証キー
    let link2 = s.outbox.next("identity_verified");
    c.goto(&link2.link()).await?;
    on_path(c, "/registration/verify").await?;
    ensure(
        c.current_url().await?.query().is_none(),
        "link 2 token left in the URL",
    )?;
    shoot(c, "07-auth-key-entry").await?;
    fill(c, "#auth_key", &auth_key).await?;
    click(c, "#verify-submit").await?;
    on_path(c, "/registration/credentials").await?;

    // R5: 利用者情報入力 — メールアドレス read-only, パスワードを表示する toggles.
    let email_shown = c
        .find(Locator::Css("#email_shown"))
        .await?
        .prop("value")
        .await?;
    ensure(
        email_shown.as_deref() == Some(EMAIL),
        format!("メールアドレス shown: {email_shown:?}"),
    )?;
    fill(c, "#login_id", LOGIN_ID).await?;
    fill(c, "#password", PASSWORD).await?;
    fill(c, "#password_confirmation", PASSWORD).await?;
    fill(c, "#nickname", "たろう").await?;
    click(c, "input[data-toggle-password]").await?;
    let kind = c
        .find(Locator::Css("#password"))
        .await?
        .prop("type")
        .await?;
    ensure(
        kind.as_deref() == Some("text"),
        "パスワードを表示する works",
    )?;
    shoot(c, "08-credentials").await?;
    click(c, "#credentials-submit").await?;
    on_path(c, "/registration/done").await?;
    text_of(c, "#registered").await?;
    shoot(c, "09-registered").await?;

    // L1: ログイン → 暗証キー入力
    click(c, "#to-login").await?;
    on_path(c, "/login").await?;
    fill(c, "#login_id", LOGIN_ID).await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    on_path(c, "/login/otp").await?;
    page_contains(c, "※暗証キーを入力するまでこのページは閉じないでください。").await?;
    page_contains(c, "この暗証キーは今回1回限り有効です。").await?;
    page_contains(c, "「迷惑メール」フォルダ").await?;
    shoot(c, "10-otp").await?;

    // L2: a wrong code (shown in Japanese), then the right one → home.
    let code = s.outbox.next("login_otp").otp();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    fill(c, "#code", wrong).await?;
    click(c, "#otp-submit").await?;
    let error = text_of(c, "#error").await?;
    ensure(
        error.contains("暗証キーが正しくありません"),
        format!("otp error: {error}"),
    )?;
    shoot(c, "10b-otp-wrong").await?;
    fill(c, "#code", &code).await?;
    click(c, "#otp-submit").await?;
    on_path(c, "/home").await?;
    page_contains(c, "たろうさん、ようこそ。").await?;
    page_contains(c, "資格情報のお知らせ").await?;
    page_contains(c, "医療費のお知らせ").await?;
    page_contains(c, "サンプル").await?;
    page_contains(c, "999-****56-00").await?;
    shoot(c, "11-home").await?;

    // ログアウト: back to the login page; home is closed.
    click(c, "#logout").await?;
    on_path(c, "/login").await?;
    page_contains(c, "ログアウトしました。").await?;
    c.goto(&format!("{}/home", s.base)).await?;
    on_path(c, "/login").await?;
    shoot(c, "12-logged-out").await?;

    // ログインID・パスワードを忘れた方 (the journeys themselves: tests/portal_http.rs).
    click(c, "#forgot").await?;
    on_path(c, "/recovery").await?;
    page_contains(c, "ログインIDを忘れた方").await?;
    page_contains(c, "パスワードを忘れた方").await?;
    shoot(c, "14-recovery").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preissued_member_registers_with_the_temporary_password() {
    let server = start_portal().await;
    let letter = server
        .app_portal
        .provision_account(&kenpo_auth::ports::MemberId::new("SAKURA-0004"))
        .await
        .expect("provision the demo member");
    let browser = start_browser().await;
    run(
        "temporary-password",
        &browser,
        temporary_password_journey(
            &server,
            &browser.client,
            letter.login_id.as_str(),
            letter.temporary_password.expose_secret(),
        ),
    )
    .await;
    browser.client.clone().close().await.ok();
}

/// R1 → link 1 → 事前登録 (login ID + 仮パスワード, R2') → R5 → login.
async fn temporary_password_journey(s: &Server, c: &Client, id: &str, temp: &str) -> Outcome {
    c.goto(&format!("{}/register", s.base)).await?;
    fill(c, "#email", "ichiro.suzuki@example.jp").await?;
    click(c, "#register-submit").await?;
    text_of(c, "#sent").await?;
    c.goto(&s.outbox.next("registration_link").link()).await?;
    on_path(c, "/registration/link").await?;
    // A wrong 仮パスワード first: the one generic login message.
    fill(c, "#temp_login_id", id).await?;
    fill(c, "#temp_password", "not-the-letter").await?;
    click(c, "#temporary-submit").await?;
    let error = text_of(c, "#error").await?;
    ensure(
        error.contains("ログインIDまたはパスワードが正しくありません。"),
        format!("temporary error: {error}"),
    )?;
    fill(c, "#temp_login_id", id).await?;
    fill(c, "#temp_password", temp).await?;
    shoot(c, "04b-temporary-password").await?;
    click(c, "#temporary-submit").await?;
    on_path(c, "/registration/credentials").await?;
    fill(c, "#login_id", "suzuki-ichiro").await?;
    fill(c, "#password", PASSWORD).await?;
    fill(c, "#password_confirmation", PASSWORD).await?;
    click(c, "#credentials-submit").await?;
    on_path(c, "/registration/done").await?;
    click(c, "#to-login").await?;
    fill(c, "#login_id", "suzuki-ichiro").await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    on_path(c, "/login/otp").await?;
    fill(c, "#code", &s.outbox.next("login_otp").otp()).await?;
    click(c, "#otp-submit").await?;
    on_path(c, "/home").await?;
    page_contains(c, "鈴木 一郎さん、ようこそ。").await?;
    page_contains(c, "999-****21-00").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_otp_screen_kills_the_code() {
    let server = start_portal().await;
    register_suzuki(&server).await;
    let browser = start_browser().await;
    run(
        "otp-close",
        &browser,
        otp_close_scenario(&server, &browser.client),
    )
    .await;
    browser.client.clone().close().await.ok();
}

/// Waits until the server has recorded `n` closed code screens.
async fn closed_screens(s: &Server, n: usize) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.audit.count(AuditKind::OtpScreenClosed) < n {
        if Instant::now() > deadline {
            return Err(format!(
                "the close beacon did not arrive ({} closes recorded)",
                s.audit.count(AuditKind::OtpScreenClosed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn log_in_to_otp_screen(s: &Server, c: &Client) -> Outcome<String> {
    c.goto(&format!("{}/login", s.base)).await?;
    fill(c, "#login_id", "suzuki-ichiro").await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    on_path(c, "/login/otp").await?;
    text_of(c, "#otp-form").await?;
    Ok(s.outbox.next("login_otp").otp())
}

/// Comes back to the 暗証キー page after it was closed: the member is on the login
/// screen, told why, instead of a form that looks alive.
async fn return_says_closed(s: &Server, c: &Client) -> Outcome {
    c.goto(&format!("{}/login/otp", s.base)).await?;
    on_path(c, "/login").await?;
    let notice = text_of(c, "#notice").await?;
    ensure(
        notice.contains("暗証キー入力画面が閉じられたため、暗証キーは無効になりました。"),
        format!("expected the reason, page says: {notice}"),
    )
}

async fn otp_close_scenario(s: &Server, c: &Client) -> Outcome {
    // 1. Close the tab of the 暗証キー screen while another window stays open.
    let first = c.window().await?;
    c.goto(&format!("{}/login", s.base)).await?;
    let second = c.new_window(true).await?;
    c.switch_to_window(second.handle).await?;
    log_in_to_otp_screen(s, c).await?;
    c.close_window().await?;
    c.switch_to_window(first).await?;
    closed_screens(s, 1).await?;
    return_says_closed(s, c).await?;
    shoot(c, "13-otp-closed").await?;

    // 2. Navigate away from the 暗証キー screen (pagehide fires the beacon too).
    log_in_to_otp_screen(s, c).await?;
    c.goto(&format!("{}/recovery", s.base)).await?;
    closed_screens(s, 2).await?;
    return_says_closed(s, c).await?;

    // 3. And a code typed with the screen left open still works.
    let code = log_in_to_otp_screen(s, c).await?;
    fill(c, "#code", &code).await?;
    click(c, "#otp-submit").await?;
    on_path(c, "/home").await?;
    ensure(
        s.audit.count(AuditKind::OtpScreenClosed) == 2,
        "submitting the code is not closing the screen",
    )
}

async fn register_suzuki(server: &Server) {
    portal_support::register_via_library(
        &server.app_portal,
        &server.outbox,
        "ichiro.suzuki@example.jp",
        "999-654321-00",
        "1990-01-15",
        "suzuki-ichiro",
        PASSWORD,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_page_frozen_for_three_minutes_still_takes_its_code() {
    let server = start_portal_with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    register_suzuki(&server).await;
    let browser = start_browser().await;
    run(
        "otp-frozen",
        &browser,
        otp_frozen_scenario(&server, &browser.client),
    )
    .await;
    browser.client.clone().close().await.ok();
}

/// The member switches to the mail app: the page is frozen (no timers, no events) while
/// three minutes pass on the server, then comes back and takes the code.
async fn otp_frozen_scenario(s: &Server, c: &Client) -> Outcome {
    let clock = s.clock.as_ref().ok_or("a manual clock")?;
    emulate(c, PHONE.0, PHONE.1, true).await?;
    let code = log_in_to_otp_screen(s, c).await?;
    lifecycle(c, "frozen").await?;
    clock.advance(time::Duration::minutes(3));
    // Real time passes too: anything the page had scheduled would be due by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    lifecycle(c, "active").await?;
    ensure(
        s.audit.count(AuditKind::OtpScreenClosed) == 0,
        "a frozen page is not a closed one",
    )?;
    fill(c, "#code", &code).await?;
    click(c, "#otp-submit").await?;
    on_path(c, "/home").await?;
    page_contains(c, "鈴木 一郎さん、ようこそ。").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_submits_on_a_slow_network_end_on_the_right_page() {
    let server = start_portal_with(Options {
        post_delay: Some(Duration::from_millis(1500)),
        ..Options::default()
    })
    .await;
    let browser = start_browser().await;
    run(
        "double-submit",
        &browser,
        double_submit_scenario(&server, &browser.client),
    )
    .await;
    browser.client.clone().close().await.ok();
}

/// R3, R5, L1 and L2, each posted twice by a double tap whose first answer is late.
async fn double_submit_scenario(s: &Server, c: &Client) -> Outcome {
    emulate(c, PHONE.0, PHONE.1, true).await?;
    c.goto(&format!("{}/register", s.base)).await?;
    fill(c, "#email", "hanako.yamada@example.jp").await?;
    click(c, "#register-submit").await?;
    text_of(c, "#sent").await?;
    c.goto(&s.outbox.next("registration_link").link()).await?;
    click(c, "#to-identity").await?;
    on_path(c, "/registration/identity").await?;

    // R3 twice: the 認証キー page, with the one key whose mail was sent.
    fill(c, "#card_symbol", "999").await?;
    fill(c, "#card_number", "123456").await?;
    fill(c, "#card_branch", "01").await?;
    fill(c, "#birth_date", "1987-09-30").await?;
    double_submit(c, "#identity-form").await?;
    on_path(c, "/registration/auth-key").await?;
    let auth_key = text_of(c, "#auth-key").await?;
    ensure(
        s.posts_to("/registration/identity") == 2,
        format!("R3 posted {} times", s.posts_to("/registration/identity")),
    )?;
    // A reload shows the same key: it is not lost.
    c.refresh().await?;
    ensure(
        text_of(c, "#auth-key").await? == auth_key,
        "the 認証キー survives a reload",
    )?;
    let link2 = s.outbox.next("identity_verified");
    ensure(
        s.outbox.of_kind("identity_verified").len() == 1,
        "one 本人確認完了のご案内",
    )?;
    c.goto(&link2.link()).await?;
    fill(c, "#auth_key", &auth_key).await?;
    click(c, "#verify-submit").await?;
    on_path(c, "/registration/credentials").await?;

    // R5 twice: 登録完了, not 「この操作は行えません」.
    fill(c, "#login_id", "yamada-hanako").await?;
    fill(c, "#password", PASSWORD).await?;
    fill(c, "#password_confirmation", PASSWORD).await?;
    double_submit(c, "#credentials-form").await?;
    on_path(c, "/registration/done").await?;
    text_of(c, "#registered").await?;
    ensure(
        s.posts_to("/registration/credentials") == 2,
        format!(
            "R5 posted {} times",
            s.posts_to("/registration/credentials")
        ),
    )?;

    // L1 twice: one 暗証キー mail, and its code works.
    c.goto(&format!("{}/login", s.base)).await?;
    fill(c, "#login_id", "yamada-hanako").await?;
    fill(c, "#password", PASSWORD).await?;
    double_submit(c, "#login-form").await?;
    on_path(c, "/login/otp").await?;
    text_of(c, "#otp-form").await?;
    ensure(
        s.posts_to("/login") == 2,
        format!("L1 posted {} times", s.posts_to("/login")),
    )?;
    let code = s.outbox.next("login_otp").otp();
    ensure(
        s.outbox.of_kind("login_otp").len() == 1,
        "a double tap mails one 暗証キー",
    )?;

    // L2 twice: home, not 「画面の有効期限が切れました」.
    fill(c, "#code", &code).await?;
    double_submit(c, "#otp-form").await?;
    on_path(c, "/home").await?;
    page_contains(c, "山田 花子さん、ようこそ。").await?;
    ensure(
        s.posts_to("/login/otp") == 2,
        format!("L2 posted {} times", s.posts_to("/login/otp")),
    )?;
    // The session the second post was handed is the member's: home stays open.
    c.refresh().await?;
    on_path(c, "/home").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn family_member_registers_on_a_phone_with_the_number_pad() {
    let server = start_portal().await;
    let browser = start_browser().await;
    run("phone", &browser, phone_journey(&server, &browser.client)).await;
    browser.client.clone().close().await.ok();
}

/// [`fits_the_phone`] for a page reached at desktop size: as a phone, then back.
#[cfg(feature = "passkeys")]
async fn phone_width(c: &Client, screen: &str) -> Outcome {
    emulate(c, PHONE.0, PHONE.1, true).await?;
    let fits = fits_the_phone(c, screen).await;
    c.issue_cmd(Cdp {
        cmd: "Emulation.clearDeviceMetricsOverride",
        params: json!({}),
    })
    .await?;
    fits
}

/// Fails when the page is wider than the phone (sideways scrolling).
async fn fits_the_phone(c: &Client, screen: &str) -> Outcome {
    let width = c
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await?
        .as_u64()
        .unwrap_or(0);
    ensure(
        width <= u64::from(PHONE.0),
        format!("{screen} is {width}px wide on a {}px phone", PHONE.0),
    )
}

/// R1–R5 at 390×844 for the family member 999-123456-01, the card typed in three
/// fields that each bring up the number pad (which has no hyphen key).
async fn phone_journey(s: &Server, c: &Client) -> Outcome {
    emulate(c, PHONE.0, PHONE.1, true).await?;
    c.goto(&format!("{}/register", s.base)).await?;
    fits_the_phone(c, "R1").await?;
    fill(c, "#email", "hanako.yamada@example.jp").await?;
    click(c, "#register-submit").await?;
    text_of(c, "#sent").await?;
    fits_the_phone(c, "R1 sent").await?;
    c.goto(&s.outbox.next("registration_link").link()).await?;
    on_path(c, "/registration/link").await?;
    fits_the_phone(c, "R2").await?;
    click(c, "#to-identity").await?;
    on_path(c, "/registration/identity").await?;
    fits_the_phone(c, "R3").await?;
    for id in ["#card_symbol", "#card_number", "#card_branch"] {
        let mode = c.find(Locator::Css(id)).await?.attr("inputmode").await?;
        ensure(
            mode.as_deref() == Some("numeric"),
            format!("{id} brings up the number pad"),
        )?;
    }
    // Digits only, as a number pad types them.
    fill(c, "#card_symbol", "999").await?;
    fill(c, "#card_number", "123456").await?;
    fill(c, "#card_branch", "01").await?;
    fill(c, "#birth_date", "1987-09-30").await?;
    click(c, "#identity-submit").await?;
    on_path(c, "/registration/auth-key").await?;
    let auth_key = text_of(c, "#auth-key").await?;
    fits_the_phone(c, "認証キー").await?;
    c.goto(&s.outbox.next("identity_verified").link()).await?;
    on_path(c, "/registration/verify").await?;
    fill(c, "#auth_key", &auth_key).await?;
    click(c, "#verify-submit").await?;
    on_path(c, "/registration/credentials").await?;
    fits_the_phone(c, "R5").await?;
    fill(c, "#login_id", "yamada-hanako").await?;
    fill(c, "#password", PASSWORD).await?;
    fill(c, "#password_confirmation", PASSWORD).await?;
    click(c, "#credentials-submit").await?;
    on_path(c, "/registration/done").await?;
    text_of(c, "#registered").await?;
    fits_the_phone(c, "登録完了").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_screens_are_axe_clean_too() {
    let server = start_portal_with(Options {
        dev_mailbox: true,
        ..Options::default()
    })
    .await;
    register_suzuki(&server).await;
    let browser = start_browser().await;
    run(
        "other-screens",
        &browser,
        other_screens(&server, &browser.client),
    )
    .await;
    browser.client.clone().close().await.ok();
}

/// パスワード再設定 from the request to the result, the dead ends, 404 and the
/// development mailbox: each checked by axe-core (through `shoot`).
async fn other_screens(s: &Server, c: &Client) -> Outcome {
    c.goto(&format!("{}/recovery", s.base)).await?;
    fill(c, "#rpw_login_id", "suzuki-ichiro").await?;
    click(c, "#forgot-password-submit").await?;
    on_path(c, "/recovery/sent").await?;
    page_contains(c, "秒以内の2通目はお送りしません").await?;
    shoot(c, "15-recovery-sent").await?;
    c.goto(&s.outbox.next("password_reset_link").link()).await?;
    on_path(c, "/password-reset/link").await?;
    page_contains(c, "※URLの有効期限は30分").await?;
    // A wrong birth date first: the error, tied to the fields, and the card kept.
    fill(c, "#card_symbol", "999").await?;
    fill(c, "#card_number", "654321").await?;
    fill(c, "#card_branch", "00").await?;
    fill(c, "#birth_date", "1990-01-16").await?;
    fill(c, "#password", "sakura-Mochi-2027").await?;
    fill(c, "#password_confirmation", "sakura-Mochi-2027").await?;
    click(c, "#reset-submit").await?;
    text_of(c, "#error").await?;
    shoot(c, "16-reset-error").await?;
    fill(c, "#birth_date", "1990-01-15").await?;
    fill(c, "#password", "sakura-Mochi-2027").await?;
    fill(c, "#password_confirmation", "sakura-Mochi-2027").await?;
    click(c, "#reset-submit").await?;
    on_path(c, "/password-reset/done").await?;
    page_contains(c, "パスワードを再設定しました。").await?;
    shoot(c, "17-reset-done").await?;
    // Back to the link's page after the reset: the result, not an error.
    c.goto(&format!("{}/password-reset/link", s.base)).await?;
    on_path(c, "/password-reset/done").await?;
    c.goto(&format!("{}/registration/link?token=nothing-here", s.base))
        .await?;
    page_contains(c, "このURLは無効です").await?;
    shoot(c, "19-link-invalid").await?;
    c.goto(&format!("{}/no-such-page", s.base)).await?;
    page_contains(c, "お探しのページは見つかりませんでした。").await?;
    shoot(c, "20-not-found").await?;
    c.goto(&format!("{}/dev/mailbox", s.base)).await?;
    page_contains(c, "パスワード再設定のご案内").await?;
    shoot(c, "21-dev-mailbox").await
}

/// WebDriver's "Add Virtual Authenticator" (WebAuthn Level 2 §11.3): a platform
/// authenticator with user verification, so `navigator.credentials` runs a real
/// ceremony without a person.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/authenticator",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// Issue #16: a member registers a パスキー on 2段階認証の設定 and logs in with password +
/// passkey, through Chromium's virtual authenticator — a real WebAuthn ceremony end to
/// end, with the ceremony state kept by the library.
#[cfg(feature = "passkeys")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_registers_a_passkey_and_logs_in_with_it() {
    let server = start_portal_with(Options {
        localhost: true,
        ..Options::default()
    })
    .await;
    register_suzuki(&server).await;
    let browser = start_browser().await;
    run(
        "passkey",
        &browser,
        passkey_journey(&server, &browser.client),
    )
    .await;
    browser.client.clone().close().await.ok();
}

#[cfg(feature = "passkeys")]
async fn passkey_journey(s: &Server, c: &Client) -> Outcome {
    c.issue_cmd(AddVirtualAuthenticator).await?;
    // Password + 暗証キー, then 2段階認証の設定.
    let code = log_in_to_otp_screen(s, c).await?;
    fill(c, "#code", &code).await?;
    click(c, "#otp-submit").await?;
    on_path(c, "/home").await?;
    click(c, "#settings-2fa-link").await?;
    on_path(c, "/settings/2fa").await?;
    page_contains(c, "パスキー").await?;
    // The 2段階認証 screens, on a phone and a desktop, each clean under axe-core.
    shoot(c, "2fa-settings").await?;
    phone_width(c, "2段階認証の設定").await?;
    click(c, "#totp-start").await?;
    on_path(c, "/settings/totp").await?;
    page_contains(c, "認証アプリ").await?;
    shoot(c, "2fa-totp-setup").await?;
    phone_width(c, "認証アプリの設定").await?;
    c.goto(&format!("{}/settings/2fa", s.base)).await?;
    fill(c, "#passkey_name", "このPC").await?;
    click(c, "#passkey-register").await?;
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#passkey-recovery-codes li"))
        .await?;
    page_contains(c, "パスキーを登録しました。").await?;
    shoot(c, "2fa-passkey-registered").await?;
    ensure(
        s.outbox
            .next("second_factor_added")
            .body
            .contains("パスキー"),
        "the member is told a passkey was added (SEC-43)",
    )?;
    c.goto(&format!("{}/settings/2fa", s.base)).await?;
    page_contains(c, "パスキー「このPC」").await?;

    // Log out, then password + パスキー: no 暗証キー is mailed.
    click(c, "#logout").await?;
    on_path(c, "/login").await?;
    fill(c, "#login_id", "suzuki-ichiro").await?;
    fill(c, "#password", PASSWORD).await?;
    click(c, "#login-submit").await?;
    on_path(c, "/login/factor").await?;
    page_contains(c, "パスキーでログイン").await?;
    shoot(c, "2fa-login").await?;
    phone_width(c, "2段階認証(ログイン)").await?;
    click(c, "#passkey-login").await?;
    on_path(c, "/home").await?;
    ensure(
        s.audit.count(AuditKind::LoginSucceeded) == 2,
        "two logins: the 暗証キー one and the passkey one",
    )?;

    // パスキーだけでログイン (the demo's policy allows it): no login ID, no password.
    click(c, "#logout").await?;
    on_path(c, "/login").await?;
    click(c, "#passkey-only-login").await?;
    on_path(c, "/home").await?;
    ensure(
        s.audit.count(AuditKind::LoginSucceeded) == 3,
        "a third login, with the passkey alone",
    )
}
