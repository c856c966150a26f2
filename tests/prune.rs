//! `rsafe container prune`, `image prune`, `volume prune`, `network prune`, `system prune` and
//! `system df` as docker's behave, through the real binary and real containers, as root and as
//! the unprivileged test user (with and without subordinate ids): what each removes and keeps,
//! docker's output, df's RECLAIMABLE equal to what the prune then reports, the refusal without
//! a terminal, and prune racing 20 containers being created, started and run: no running or
//! starting container removed, nothing left that `ps -a` and `rm` cannot see.
#[allow(dead_code)]
#[path = "support/run.rs"]
mod run_support;
mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use run_support::{Caller, Output, for_each_caller, rsafe_cmd};
use support::hostile_images::{Layer, OCI_LAYER_GZIP, docker_save, gzip};

/// `rsafe ARGS…` as `caller` on `store`, asserting it succeeded.
fn ok(caller: Caller, store: &Path, args: &[&str]) -> Output {
    let out = rsafe_cmd(caller, store, args);
    assert_eq!(out.code, 0, "{caller:?} rsafe {args:?}: {out:?}");
    out
}

/// `rsafe create|run -d FLAGS… ROOTFS sh -c SCRIPT` as `caller`.
fn container(caller: Caller, store: &Path, how: &[&str], script: &str) -> Output {
    let rootfs = caller.rootfs();
    let mut args: Vec<&str> = how.to_vec();
    args.extend([rootfs.to_str().unwrap(), "sh", "-c", script]);
    rsafe_cmd(caller, store, &args)
}

/// The full ids `ps -a -q --no-trunc` would give: every container directory of the store.
fn container_dirs(store: &Path) -> Vec<String> {
    let mut out: Vec<String> = match std::fs::read_dir(store.join("containers")) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// `ps -a`'s lines after the header.
fn ps_lines(caller: Caller, store: &Path) -> Vec<String> {
    ok(caller, store, &["ps", "-a"])
        .stdout
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// The RECLAIMABLE size (without its share) of `system df`'s row `kind`.
fn df_reclaimable(caller: Caller, store: &Path, kind: &str) -> String {
    let df = ok(caller, store, &["system", "df"]).stdout;
    let line = df
        .lines()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} row: {df}"));
    let cells: Vec<&str> = line[kind.len()..].split_whitespace().collect();
    assert!(cells.len() >= 4, "{line}");
    cells[3].to_string()
}

/// What `Total reclaimed space:` says.
fn reclaimed(out: &Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("no total: {out:?}"))
        .to_string()
}

/// The lines of section `title` (up to the blank line after it).
fn section(out: &Output, title: &str) -> Vec<String> {
    out.stdout
        .lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn container_prune_removes_stopped_containers_only_and_reclaims_what_df_said() {
    for_each_caller(|caller, store| {
        let created = ok(
            caller,
            store,
            &["create", &caller.rootfs().to_string_lossy(), "true"],
        );
        let created = created.stdout.trim().to_string();
        // 300 kB in the writable layer, a third in a directory only the container's uid 1000
        // may enter (a subordinate id of a rootless caller: counted as the container's root).
        let exited = container(
            caller,
            store,
            &["run", "--name", "exited"],
            "head -c 200000 /dev/zero > /big; mkdir /d; head -c 100000 /dev/zero > /d/f; \
             chown -R 1000:1000 /d 2>/dev/null; chmod 700 /d",
        );
        assert_eq!(exited.code, 0, "{caller:?}: {exited:?}");
        let running = container(
            caller,
            store,
            &["run", "-d", "--name", "up"],
            "head -c 50000 /dev/zero > /mid; sleep 60",
        );
        assert_eq!(running.code, 0, "{caller:?}: {running:?}");
        let up = running.stdout.trim().to_string();
        let before = container_dirs(store);
        assert_eq!(before.len(), 3, "{caller:?}");

        // Without a terminal and without -f: one line, nothing removed.
        let refused = rsafe_cmd(caller, store, &["container", "prune"]);
        assert_eq!(refused.code, 1, "{caller:?}: {refused:?}");
        assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
        assert!(
            refused
                .stderr
                .starts_with("rsafe: container prune: stdin is not a terminal"),
            "{}",
            refused.stderr
        );
        assert!(refused.stdout.is_empty());
        assert_eq!(container_dirs(store), before);

        let said = df_reclaimable(caller, store, "Containers");
        let pruned = ok(caller, store, &["container", "prune", "-f"]);
        assert_eq!(reclaimed(&pruned), said, "{caller:?}: {pruned:?}");
        // The 300 kB (and some 20 kB of state, spec and log) went.
        assert!(
            said.ends_with("kB") && said.starts_with('3'),
            "{caller:?}: {said}"
        );
        let mut deleted = section(&pruned, "Deleted Containers:");
        deleted.sort();
        let exited_id = before
            .iter()
            .find(|id| **id != created && **id != up)
            .unwrap()
            .clone();
        let mut want = vec![created.clone(), exited_id];
        want.sort();
        assert_eq!(deleted, want, "{caller:?}: {pruned:?}");
        assert_eq!(
            container_dirs(store),
            std::slice::from_ref(&up),
            "{caller:?}"
        );
        let ps = ps_lines(caller, store);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert!(ps[0].contains("Up") && ps[0].contains("up"), "{ps:?}");

        // Nothing left to prune: 0B.
        let again = ok(caller, store, &["container", "prune", "-f"]);
        assert_eq!(again.stdout, "Total reclaimed space: 0B\n", "{caller:?}");
        ok(caller, store, &["rm", "-f", "up"]);
    });
}

/// Sets its flag when dropped.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn prune_racing_twenty_containers_removes_none_that_runs_or_starts() {
    for_each_caller(|caller, store| {
        let done = AtomicBool::new(false);
        let rounds = std::sync::atomic::AtomicUsize::new(0);
        let outcomes = std::thread::scope(|scope| {
            let pruner = scope.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    let out = rsafe_cmd(caller, store, &["container", "prune", "-f"]);
                    assert_eq!(out.code, 0, "{caller:?}: prune failed: {out:?}");
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
            });
            // Stops the pruner however this thread ends: a failed assertion below must fail
            // the test, not leave it waiting for the pruner.
            let _stop = Stop(&done);
            let mut outcomes = Vec::new();
            for i in 0..20 {
                let name = format!("c{i}");
                // Even: run -d; odd: create, then start (the created one may be pruned
                // between the two: then start finds no container, as with docker).
                let outcome = if i % 2 == 0 {
                    let out = container(caller, store, &["run", "-d", "--name", &name], "sleep 60");
                    assert_eq!(out.code, 0, "{caller:?} {name}: {out:?}");
                    (name, true)
                } else {
                    let out = container(caller, store, &["create", "--name", &name], "sleep 60");
                    assert_eq!(out.code, 0, "{caller:?} {name}: {out:?}");
                    let start = rsafe_cmd(caller, store, &["start", &name]);
                    (name, start.code == 0)
                };
                outcomes.push(outcome);
            }
            drop(_stop);
            pruner.join().unwrap();
            outcomes
        });
        assert!(rounds.into_inner() >= 2, "prune did not run alongside");
        let ps = ps_lines(caller, store);
        for (name, started) in &outcomes {
            let line = ps
                .iter()
                .find(|l| l.split_whitespace().nth(1) == Some(name.as_str()));
            match (started, line) {
                (true, Some(line)) => assert!(line.contains("Up"), "{caller:?} {name}: {line}"),
                (true, None) => panic!("{caller:?}: {name} was started and then removed: {ps:?}"),
                // Pruned while created: gone whole.
                (false, None) => {}
                (false, Some(line)) => {
                    panic!("{caller:?}: {name} failed to start but is there: {line}")
                }
            }
        }
        // Everything left is a container ps -a lists, and rm removes it all.
        let dirs = container_dirs(store);
        assert_eq!(dirs.len(), ps.len(), "{caller:?}: {dirs:?} {ps:?}");
        assert!(dirs.iter().all(|d| d.len() == 64), "{caller:?}: {dirs:?}");
        let mut rm = vec!["rm", "-f"];
        let names: Vec<String> = outcomes
            .iter()
            .filter(|o| o.1)
            .map(|o| o.0.clone())
            .collect();
        rm.extend(names.iter().map(String::as_str));
        ok(caller, store, &rm);
        assert!(container_dirs(store).is_empty(), "{caller:?}");
    });
}

/// A `docker save` archive in a directory every caller can read: one layer holding `text`,
/// named `name` (none: a dangling image).
fn image_archive(dir: &Path, file: &str, name: Option<&str>, text: &str) -> String {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "etc/motd", text.as_bytes()).unwrap();
    let tar = b.into_inner().unwrap();
    let layer = Layer {
        blob: gzip(&tar),
        tar,
        media_type: OCI_LAYER_GZIP.into(),
    };
    let names: Vec<&str> = name.into_iter().collect();
    let (tree, _) = docker_save(&[&layer], &names);
    let path = dir.join(file);
    tree.write_tar(&path);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    path.to_string_lossy().into_owned()
}

/// `images -q`: one digest a line.
fn image_ids(caller: Caller, store: &Path) -> Vec<String> {
    let out = ok(caller, store, &["-q", "images"]);
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn image_prune_takes_dangling_images_and_with_a_every_image_no_container_uses() {
    if !support::have("umoci", support::tool("umoci")) {
        return;
    }
    let layout = support::busybox_layout();
    for_each_caller(|caller, store| {
        let work = support::containers::shared_tempdir("rsafe-prune-");
        ok(
            caller,
            store,
            &[
                "load",
                "--name",
                "busybox:prune",
                &format!("{}:root", layout.display()),
            ],
        );
        let dangling = image_archive(work.path(), "d.tar", None, "dangling\n");
        let spare = image_archive(work.path(), "s.tar", Some("spare:1"), "spare\n");
        ok(caller, store, &["load", &dangling]);
        ok(caller, store, &["load", &spare]);
        assert_eq!(image_ids(caller, store).len(), 3, "{caller:?}");
        // A stopped container keeps its image, as docker's.
        ok(
            caller,
            store,
            &["run", "--name", "user", "busybox:prune", "true"],
        );

        let plain = ok(caller, store, &["image", "prune", "-f"]);
        let lines = section(&plain, "Deleted Images:");
        assert!(!lines.is_empty(), "{caller:?}: {plain:?}");
        assert!(
            lines.iter().all(|l| l.starts_with("deleted: sha256:")),
            "{lines:?}"
        );
        assert_eq!(image_ids(caller, store).len(), 2, "{caller:?}");

        let said = df_reclaimable(caller, store, "Images");
        let all = ok(caller, store, &["image", "prune", "-a", "-f"]);
        assert_eq!(reclaimed(&all), said, "{caller:?}: {all:?}");
        let lines = section(&all, "Deleted Images:");
        assert_eq!(lines[0], "untagged: spare:1", "{caller:?}: {lines:?}");
        assert_eq!(image_ids(caller, store).len(), 1, "{caller:?}");
        let kept = ok(caller, store, &["images"]).stdout;
        assert!(kept.contains("prune"), "{caller:?}: {kept}");
        // Once the container goes, its image goes too, then its extracted layers with
        // system prune (the build cache), which df counted as reclaimable.
        ok(caller, store, &["rm", "user"]);
        ok(caller, store, &["image", "prune", "-a", "-f"]);
        assert!(image_ids(caller, store).is_empty(), "{caller:?}");
        let cache = df_reclaimable(caller, store, "Build Cache");
        assert_ne!(cache, "0B", "{caller:?}: the extracted busybox layer");
        let system = ok(caller, store, &["system", "prune", "-f"]);
        assert_eq!(reclaimed(&system), cache, "{caller:?}: {system:?}");
        assert_eq!(
            section(&system, "Deleted build cache objects:").len(),
            1,
            "{system:?}"
        );
        let df = ok(caller, store, &["system", "df"]).stdout;
        for row in ["Images", "Containers", "Local Volumes", "Build Cache"] {
            let line = df.lines().find(|l| l.starts_with(row)).unwrap();
            let cells: Vec<&str> = line[row.len()..].split_whitespace().collect();
            assert_eq!(cells, ["0", "0", "0B", "0B"], "{caller:?}: {df}");
        }
    });
}

#[test]
fn volume_prune_takes_unused_volumes_with_a_only_and_network_prune_unused_networks() {
    for_each_caller(|caller, store| {
        ok(caller, store, &["volume", "create", "free"]);
        let used = container(
            caller,
            store,
            &["run", "-v", "kept:/data"],
            "head -c 3000 /dev/zero > /data/f",
        );
        assert_eq!(used.code, 0, "{caller:?}: {used:?}");
        let free = rsafe_cmd(
            caller,
            store,
            &[
                "run",
                "--rm",
                "-v",
                "free:/data",
                &caller.rootfs().to_string_lossy(),
                "sh",
                "-c",
                "head -c 7000 /dev/zero > /data/f",
            ],
        );
        assert_eq!(free.code, 0, "{caller:?}: {free:?}");

        // docker >= 23: without -a only the unused anonymous volumes go (here one left by a
        // plain rm), never a named one.
        let anon = container(
            caller,
            store,
            &["run", "--name", "anon", "-v", "/scratch"],
            "head -c 5000 /dev/zero > /scratch/f",
        );
        assert_eq!(anon.code, 0, "{caller:?}: {anon:?}");
        ok(caller, store, &["rm", "anon"]);
        let before = ok(caller, store, &["volume", "ls", "-q"]).stdout;
        let anon: Vec<String> = before
            .lines()
            .filter(|v| !["free", "kept"].contains(v))
            .map(str::to_string)
            .collect();
        assert_eq!(anon.len(), 1, "{caller:?}: {before}");
        let plain = ok(caller, store, &["volume", "prune", "-f"]);
        assert_eq!(
            section(&plain, "Deleted Volumes:"),
            anon,
            "{caller:?}: {plain:?}"
        );
        let took = reclaimed(&plain);
        assert!(
            took.starts_with('5') && took.ends_with("kB"),
            "{caller:?}: {plain:?}"
        );
        assert!(
            plain.stderr.contains("only -a removes named ones"),
            "{}",
            plain.stderr
        );
        let said = df_reclaimable(caller, store, "Local Volumes");
        assert!(
            said.starts_with('7') && said.ends_with("kB"),
            "{caller:?}: {said}"
        );
        let all = ok(caller, store, &["volume", "prune", "-a", "-f"]);
        assert_eq!(
            section(&all, "Deleted Volumes:"),
            ["free"],
            "{caller:?}: {all:?}"
        );
        assert_eq!(reclaimed(&all), said, "{caller:?}");
        let ls = ok(caller, store, &["volume", "ls", "-q"]).stdout;
        assert_eq!(ls, "kept\n", "{caller:?}");

        ok(caller, store, &["network", "create", "--internal", "spare"]);
        let nets = ok(caller, store, &["network", "prune", "-f"]);
        assert_eq!(
            nets.stdout, "Deleted Networks:\nspare\n\n",
            "{caller:?}: {nets:?}"
        );
        assert_eq!(
            ok(caller, store, &["network", "ls", "-q"]).stdout,
            "",
            "{caller:?}"
        );
        let refused = rsafe_cmd(caller, store, &["network", "prune"]);
        assert_eq!(refused.stderr.lines().count(), 1, "{refused:?}");
        assert_ne!(refused.code, 0);
    });
}

/// `rsafe --root STORE ARGS…` on a terminal (`script`), `answer` typed at it.
fn on_terminal(store: &Path, args: &str, answer: &str) -> Output {
    let line = format!(
        "{} --root {} {args}",
        support::rsafe_bin().display(),
        store.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn on_a_terminal_prune_asks_first_and_no_cancels() {
    if !support::have("script (util-linux)", support::tool("script")) {
        return;
    }
    let store = run_support::Store::new(Caller::Host);
    let store = store.path();
    ok(
        Caller::Host,
        store,
        &["create", &Caller::Host.rootfs().to_string_lossy(), "true"],
    );
    let no = on_terminal(store, "container prune", "n\n");
    assert_eq!(no.code, 1, "{no:?}");
    assert!(
        no.stdout.contains(
            "WARNING! This will remove all stopped containers.\r\nAre you sure you want to continue? [y/N] "
        ),
        "{no:?}"
    );
    assert!(
        no.stdout
            .contains("rsafe: container prune has been cancelled"),
        "{no:?}"
    );
    assert_eq!(container_dirs(store).len(), 1);
    let yes = on_terminal(store, "system prune", "y\n");
    assert_eq!(yes.code, 0, "{yes:?}");
    assert!(yes.stdout.contains("  - unused build cache\r\n"), "{yes:?}");
    assert!(yes.stdout.contains("Deleted Containers:\r\n"), "{yes:?}");
    assert!(container_dirs(store).is_empty());
}
