//! `kiln build --call=...`: answers computed by the Dockerfile frontend alone.

use std::collections::BTreeMap;

use crate::render::Format;

pub struct CallRequest<'a> {
    pub label: &'a str,
    pub text: &'a str,
    pub target: Option<&'a str>,
    pub build_args: &'a BTreeMap<String, String>,
    pub format: Format,
}

pub fn outline(_request: &CallRequest<'_>) -> i32 {
    crate::render::fail("kiln build", &"--call=outline is being wired")
}

pub fn targets(_request: &CallRequest<'_>) -> i32 {
    crate::render::fail("kiln build", &"--call=targets is being wired")
}

pub fn check(_request: &CallRequest<'_>) -> i32 {
    crate::render::fail("kiln build", &"--check is being wired")
}

pub fn check_quiet(_request: &CallRequest<'_>) -> i32 {
    0
}
