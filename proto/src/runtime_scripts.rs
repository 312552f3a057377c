//! Which rootfs script installs the container runtime and which removes it (SPEC §3). Three
//! layouts are in use: installer's own names, sealer v0.9's per-runtime names (basefs's
//! `docker.sh` / `uninstall-docker.sh`, chosen by `spec.containerRuntime.type`), and the
//! legacy single `init.sh` / `clean.sh`. The first that exists wins, so a rootfs carrying
//! more than one runs exactly one of them.

/// The scripts (names under `scripts/`) that may install the runtime, in the order tried.
pub fn install_candidates(runtime: &str) -> Vec<String> {
    candidates("init-container-runtime.sh", None, runtime, "init.sh")
}

/// The scripts that may remove it, in the order tried.
pub fn clean_candidates(runtime: &str) -> Vec<String> {
    candidates(
        "clean-container-runtime.sh",
        Some("uninstall-"),
        runtime,
        "clean.sh",
    )
}

fn candidates(own: &str, prefix: Option<&str>, runtime: &str, legacy: &str) -> Vec<String> {
    let mut out = vec![own.to_string()];
    // Only a plain name can name a script; anything else (a hand-run plan's empty type)
    // has no per-runtime script.
    let plain = !runtime.is_empty()
        && runtime
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        out.push(format!("{}{runtime}.sh", prefix.unwrap_or_default()));
    }
    out.push(legacy.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_then_sealer_v09_then_legacy() {
        assert_eq!(
            install_candidates("docker"),
            ["init-container-runtime.sh", "docker.sh", "init.sh"]
        );
        assert_eq!(
            clean_candidates("containerd"),
            [
                "clean-container-runtime.sh",
                "uninstall-containerd.sh",
                "clean.sh"
            ]
        );
        assert_eq!(
            install_candidates("../x"),
            ["init-container-runtime.sh", "init.sh"]
        );
    }
}
