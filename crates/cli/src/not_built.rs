/// A subcommand whose stage has not been built yet. It exits with code 3 rather than
/// pretending to work.
#[derive(Debug)]
pub struct NotBuilt {
    pub command: &'static str,
    pub issue: &'static str,
}

impl std::fmt::Display for NotBuilt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`percept {}` is not built yet (tracked by the issue \"{}\")",
            self.command, self.issue
        )
    }
}

impl std::error::Error for NotBuilt {}
