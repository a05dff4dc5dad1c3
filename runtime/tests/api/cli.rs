use std::process::Command;

use shared::auth::{Jwt, Role};

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
    ] {
        assert!(
            help.contains(variable),
            "--help does not mention {variable}"
        );
    }
}
