use std::process::Command;

use auth::Jwt;
use domain::Role;

const TICKETD: &str = env!("CARGO_BIN_EXE_ticketd");

#[test]
fn token_prints_a_verifiable_jwt_alone_on_stdout() {
    let output = Command::new(TICKETD)
        .args([
            "token", "--role", "admin", "--sub", "ops", "--secret", "s3cret", "--ttl", "5m",
        ])
        .output()
        .unwrap();

    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_suffix('\n').unwrap();
    assert!(!token.contains(char::is_whitespace));
    let caller = Jwt::new(b"s3cret").verify(token).unwrap();
    assert_eq!((caller.role, caller.user.as_str()), (Role::Admin, "ops"));
}

#[test]
fn token_refuses_an_unknown_role() {
    let output = Command::new(TICKETD)
        .args(["token", "--role", "root", "--sub", "ops"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn help_documents_the_environment() {
    let output = Command::new(TICKETD).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in [
        "LISTEN_ADDR",
        "JWT_SECRET",
        "RESERVATION_TTL",
        "FUNCTIONS",
        "MAX_IN_FLIGHT",
        "FINISHED_HOLD_RETENTION",
    ] {
        assert!(
            help.contains(variable),
            "--help does not mention {variable}"
        );
    }
}

/// URLs may carry passwords: set in the environment, `--help` names them but never shows
/// their values.
#[test]
fn help_never_shows_a_url_with_its_password() {
    let password = "s3cret-in-a-url";
    let output = Command::new(TICKETD)
        .arg("--help")
        .env("REDIS_URL", format!("redis://:{password}@127.0.0.1:6379"))
        .env(
            "DATABASE_URL",
            format!("postgres://u:{password}@127.0.0.1/x"),
        )
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("REDIS_URL") && help.contains("DATABASE_URL"));
    assert!(!help.contains(password), "--help shows a password");
}

/// With every log line on (trace), a served session never prints the JWT secret.
#[test]
fn the_secret_never_reaches_the_logs() {
    let secret = "never-log-me-5f0c2a9e-7d41-4b7a-9c3e-secret";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Command::new(TICKETD)
        .arg("serve")
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", secret)
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
        for _ in 0..100 {
            if client.get(url("/health")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let admin = Jwt::new(secret.as_bytes())
            .issue(
                Role::Admin,
                &domain::UserId::parse("ops").unwrap(),
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        let event = serde_json::json!({"name": "x", "date": "2030-01-01T00:00:00Z"});
        for token in [admin.as_str(), "garbage", "a.b.c"] {
            let response = client
                .post(url("/events"))
                .bearer_auth(token)
                .json(&event)
                .send()
                .await
                .unwrap();
            assert_ne!(
                response.status(),
                reqwest::StatusCode::INTERNAL_SERVER_ERROR
            );
        }
    });
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let output = server.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr) + String::from_utf8_lossy(&output.stdout);
    assert!(logs.contains("listening"), "no logs captured: {logs}");
    assert!(!logs.contains(secret), "the secret is in the logs");
}
