//! `kiln login` and `kiln logout`: check registry credentials and store them where docker
//! keeps them (config.json or its credential helper), or remove them.

use std::io::{BufRead, IsTerminal, Read, Write};

use kiln_registry::auth::{self, Stored};
use kiln_registry::{AuthConfig, ClientOptions};

use crate::render::fail;

/// Registries that are spoken to over plain HTTP, comma-separated (loopback always is).
pub const INSECURE_ENV: &str = "KILN_INSECURE_REGISTRIES";

const DEFAULT_SERVER: &str = "docker.io";

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Registry to log in to (default: Docker Hub)
    pub server: Option<String>,
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// Registry to log out from (default: Docker Hub)
    pub server: Option<String>,
}

/// Client options every registry command uses: docker's credentials
/// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`) and the insecure
/// registries listed in `KILN_INSECURE_REGISTRIES`.
pub fn client_options() -> Result<ClientOptions, String> {
    let auth = AuthConfig::from_env().map_err(|e| e.to_string())?;
    let insecure = std::env::var(INSECURE_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    Ok(ClientOptions {
        auth,
        insecure,
        ..ClientOptions::default()
    })
}

/// How docker names a server in messages (`https://index.docker.io/v1/` for Docker Hub).
fn display_server(server: &str) -> String {
    auth::server_key(&auth::normalise_host(server))
}

pub fn run_login(args: &LoginArgs) -> i32 {
    let server = args.server.as_deref().unwrap_or(DEFAULT_SERVER);
    let shown = display_server(server);
    let options = match client_options() {
        Ok(o) => o,
        Err(e) => return fail("cannot read the docker config", &e),
    };
    let username = match &args.username {
        Some(u) => u.clone(),
        None if args.password_stdin => {
            return fail("cannot log in", &"--password-stdin needs --username");
        }
        None => match prompt("Username: ", false) {
            Ok(u) => u,
            Err(e) => return fail("cannot log in", &e),
        },
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            return fail("cannot read the password from stdin", &e);
        }
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        match prompt("Password: ", true) {
            Ok(p) => p,
            Err(e) => return fail("cannot log in", &e),
        }
    };
    if password.is_empty() {
        return fail("cannot log in", &"the password is empty");
    }
    match auth::login(&options, server, &username, &password) {
        Ok(Stored::ConfigFile(path)) => {
            eprintln!(
                "WARNING! Your password will be stored unencrypted in {}.",
                path.display()
            );
            println!("Login Succeeded");
            0
        }
        Ok(Stored::Helper(_)) => {
            println!("Login Succeeded");
            0
        }
        Err(e) => fail(&format!("cannot log in to {shown}"), &e),
    }
}

pub fn run_logout(args: &LogoutArgs) -> i32 {
    let server = args.server.as_deref().unwrap_or(DEFAULT_SERVER);
    let shown = display_server(server);
    let auth = match AuthConfig::from_env() {
        Ok(a) => a,
        Err(e) => return fail("cannot read the docker config", &e),
    };
    match auth::logout(&auth, server) {
        Ok(true) => {
            println!("Removing login credentials for {shown}");
            0
        }
        Ok(false) => {
            println!("Not logged in to {shown}");
            0
        }
        Err(e) => fail(&format!("cannot log out from {shown}"), &e),
    }
}

/// Reads one line from the terminal; `secret` turns echo off while typing.
fn prompt(label: &str, secret: bool) -> Result<String, String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(format!(
            "{} not given and stdin is not a terminal; use {}",
            label.trim_end_matches([':', ' ']).to_lowercase(),
            if secret {
                "--password or --password-stdin"
            } else {
                "--username"
            }
        ));
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let stty = |flag: &str| {
        std::process::Command::new("stty")
            .arg(flag)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    if secret {
        let _ = stty("-echo");
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if secret {
        let _ = stty("echo");
        eprintln!();
    }
    read.map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
