//! `vagrant ssh-config` output (recorded from a two-machine libvirt lab) becomes a cluster file
//! in DESIGN.md's shape plus an ssh config that carries Vagrant's per-machine settings.

use clusters::config::ClusterFile;
use clusters::ssh::Target;
use std::path::PathBuf;

#[test]
fn recorded_vagrant_output_imports() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let output =
        std::fs::read_to_string(dir.join("vagrant-ssh-config.txt")).expect("recorded output");
    let tmp = std::env::temp_dir().join(format!("faultline-vagrant-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let config_path = tmp.join("lab.ssh_config");
    let (file, config) =
        clusters::vagrant::import(&output, "lab", config_path.clone()).expect("import");
    assert_eq!(file.nodes, ["n1", "n2"]);
    assert_eq!(file.ssh.user.as_deref(), Some("vagrant"));
    // Vagrant turns host key checking off; the import keeps that visible in the file.
    assert!(!file.ssh.strict_host_key_checking);
    // The cluster file round-trips through YAML, and the ssh config resolves each node.
    let reparsed = ClusterFile::parse(&file.to_yaml(), "lab.yaml").expect("valid cluster file");
    assert_eq!(reparsed, file);
    std::fs::write(&config_path, config).expect("write config");
    let n2 = Target::resolve("n2", &reparsed.ssh);
    assert_eq!(
        (n2.host.as_str(), n2.port, n2.user.as_str()),
        ("127.0.0.1", 2200, "vagrant")
    );
    assert_eq!(
        n2.identity_files,
        [PathBuf::from(
            "/home/me/lab/.vagrant/machines/n2/libvirt/private_key"
        )]
    );
    let _ = std::fs::remove_dir_all(&tmp);

    let err =
        clusters::vagrant::import("  User vagrant\n", "lab", config_path).expect_err("no Host");
    assert!(err.to_string().contains("line 1"), "{err}");
}
