// The one rule for whether a service the tests need is here. Included by both the attribute
// (`runcomfy-testenv-macros`, deciding when a test is compiled) and the library
// (`runcomfy-testenv`, which hands the test what it found), so they never disagree.

/// A service some tests need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// A PostgreSQL server: `RUNCOMFY_TEST_PG_URL` (from `scripts/pg-test-server start`).
    Postgres,
    /// A headless Chromium: `RUNCOMFY_TEST_CHROMIUM`, else `chromium` or `chromium-browser`
    /// on `PATH`.
    Chromium,
    /// The `shared/` folder beside the checkout (the schema corpus, the seed pages).
    Shared,
}

/// Names the services a run requires (`all`, or a comma-separated list of `postgres`,
/// `chromium`, `shared`): a required service that is absent fails its tests instead of
/// ignoring them. `.ci/run` sets it to `all`.
pub const REQUIRE_ENV: &str = "RUNCOMFY_TEST_REQUIRE";
/// The PostgreSQL server's URL.
pub const PG_ENV: &str = "RUNCOMFY_TEST_PG_URL";
/// An explicit Chromium binary.
pub const CHROMIUM_ENV: &str = "RUNCOMFY_TEST_CHROMIUM";
/// Every environment variable the rule reads (a test crate is rebuilt when one changes).
pub const TRACKED_ENV: [&str; 4] = [REQUIRE_ENV, PG_ENV, CHROMIUM_ENV, "PATH"];

impl Service {
    /// The service a name in `needs(...)` or in [`REQUIRE_ENV`] stands for.
    pub fn parse(name: &str) -> Option<Service> {
        match name.trim() {
            "postgres" => Some(Service::Postgres),
            "chromium" => Some(Service::Chromium),
            "shared" => Some(Service::Shared),
            _ => None,
        }
    }

    /// Its name in `needs(...)` and in [`REQUIRE_ENV`].
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::Chromium => "chromium",
            Service::Shared => "shared",
        }
    }

    /// What a test uses of the service (a URL or a path), or why it is not here.
    /// `workspace` is the checkout's root folder.
    pub fn find(self, workspace: &std::path::Path) -> Result<String, String> {
        match self {
            Service::Postgres => match std::env::var(PG_ENV) {
                Ok(url) if !url.trim().is_empty() => Ok(url),
                _ => Err(format!(
                    "needs PostgreSQL: {PG_ENV} is not set (eval \"$(scripts/pg-test-server start)\")"
                )),
            },
            Service::Chromium => {
                if let Some(path) = std::env::var_os(CHROMIUM_ENV).filter(|p| !p.is_empty()) {
                    let path = std::path::PathBuf::from(path);
                    return if path.is_file() {
                        Ok(path.display().to_string())
                    } else {
                        Err(format!(
                            "needs Chromium: {CHROMIUM_ENV} names {}, which is not a file",
                            path.display()
                        ))
                    };
                }
                let dirs = std::env::var_os("PATH").unwrap_or_default();
                std::env::split_paths(&dirs)
                    .flat_map(|d| ["chromium", "chromium-browser"].map(|b| d.join(b)))
                    .find(|p| p.is_file())
                    .map(|p| p.display().to_string())
                    .ok_or_else(|| {
                        "needs Chromium: no chromium on PATH (apt-get install chromium, or set RUNCOMFY_TEST_CHROMIUM)"
                            .to_owned()
                    })
            }
            Service::Shared => {
                let shared = workspace.join("../shared");
                if shared.join("corpus").is_dir() {
                    Ok(shared.display().to_string())
                } else {
                    Err(format!(
                        "needs the shared folder: {} has no corpus/ (clone it beside the checkout)",
                        shared.display()
                    ))
                }
            }
        }
    }

    /// Whether the run requires the service ([`REQUIRE_ENV`]).
    pub fn required(self) -> bool {
        std::env::var(REQUIRE_ENV).is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|n| n == "all" || n == "1" || n == self.name())
        })
    }
}
