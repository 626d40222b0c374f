//! The disk backend facing a writer of its directory (SECURITY.md's threat
//! model): tampered rows and side files, a directory that is not private,
//! failed writes and rows of the wrong SQL type. Every case runs against real
//! sqlite files in a temp dir, tampered through a second connection.
#![cfg(feature = "disk")]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cashews::Cache;
use support::{side_files, TempDir};

/// A one-shard cache on `dir` whose values above 64 bytes go to side files.
fn open(dir: &Path, params: &str) -> Cache {
    let cache = Cache::new();
    cache
        .setup(&format!(
            "disk://?directory={}&shards=1&large_value=64{params}",
            dir.display()
        ))
        .unwrap();
    cache
}

/// A second connection to the shard file, as an attacker with write access
/// to the directory has.
fn tamper(dir: &Path, sql: &str, args: impl rusqlite::Params) {
    let conn = rusqlite::Connection::open(dir.join("shard-000.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(sql, args).unwrap();
}

/// A file outside the cache directory that no cache command may touch.
fn victim(name: &str) -> (TempDir, PathBuf) {
    let outside = TempDir::new(name);
    let path = outside.path.join("secret.txt");
    std::fs::write(&path, b"the secret of another program").unwrap();
    (outside, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_cannot_make_the_cache_read_a_file_outside_its_directory() {
    let dir = TempDir::new("hostile-read");
    let (_outside, secret) = victim("hostile-read-victim");
    let cache = open(&dir.path, "");
    cache.set_raw("k", vec![1u8; 1000]).await.unwrap();
    for name in [
        secret.display().to_string(),
        format!("../../{}", secret.display()),
        "../shard-000.db".to_owned(),
    ] {
        tamper(&dir.path, "UPDATE cache SET file = ?1", [&name]);
        assert_eq!(
            cache.get_raw("k").await.unwrap(),
            None,
            "{name}: a name the backend did not make reads as a miss"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_cannot_make_the_cache_delete_a_file_outside_its_directory() {
    let dir = TempDir::new("hostile-delete");
    let (_outside, secret) = victim("hostile-delete-victim");
    let name = secret.display().to_string();
    let cache = open(&dir.path, "&check_interval=20ms");
    // Each path that removes a row's side file: delete, overwrite, delete_match,
    // expiry (the purge task) and clear.
    for step in ["delete", "overwrite", "delete_match", "expiry", "clear"] {
        cache.set_raw("k", vec![1u8; 1000]).await.unwrap();
        let real = side_files(&dir.path);
        tamper(&dir.path, "UPDATE cache SET file = ?1", [&name]);
        match step {
            // The row's value is unreadable now, so there was nothing to
            // delete as far as callers go, but the row goes.
            "delete" => {
                cache.delete("k").await.unwrap();
            }
            "overwrite" => {
                cache.set_raw("k", vec![2u8; 1000]).await.unwrap();
                cache.delete("k").await.unwrap();
            }
            "delete_match" => {
                cache.delete_match("*").await.unwrap();
            }
            "expiry" => {
                tamper(&dir.path, "UPDATE cache SET expires_at = 1", []);
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while cache.get_keys_count().await.unwrap() != 0 {
                    assert!(std::time::Instant::now() < deadline, "row never purged");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            _ => cache.clear().await.unwrap(),
        }
        assert_eq!(
            cache.get_keys_count().await.unwrap(),
            0,
            "{step}: the row went"
        );
        assert!(secret.exists(), "{step}: the outside file is still there");
        // The file the row named before tampering is an orphan now; it is
        // the sweep's to remove (tested below), never another file.
        for file in real {
            let _ = std::fs::remove_file(dir.path.join("values").join(file));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_side_file_is_read_only_as_a_regular_file_of_the_recorded_size() {
    let dir = TempDir::new("hostile-size");
    let (_outside, secret) = victim("hostile-size-victim");
    let cache = open(&dir.path, "");
    cache.set_raw("k", vec![1u8; 1000]).await.unwrap();
    let files = side_files(&dir.path);
    assert_eq!(files.len(), 1);
    let file = dir.path.join("values").join(&files[0]);

    // A symlink under a name the backend makes, to an endless device and to
    // a file outside: never followed.
    for target in [Path::new("/dev/zero"), secret.as_path()] {
        let _ = std::fs::remove_file(&file);
        std::os::unix::fs::symlink(target, &file).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(cache.get_raw("k").await.unwrap(), None, "{target:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    // A regular file that grew beyond the row's size: a miss, not a read of
    // everything there.
    let _ = std::fs::remove_file(&file);
    std::fs::write(&file, vec![1u8; 1_000_000]).unwrap();
    assert_eq!(cache.get_raw("k").await.unwrap(), None, "grown file");
    // And a row that claims an enormous size does not make the cache allocate it.
    std::fs::write(&file, vec![1u8; 1000]).unwrap();
    assert_eq!(
        cache.get_raw("k").await.unwrap().map(|v| v.len()),
        Some(1000)
    );
    tamper(&dir.path, "UPDATE cache SET size = ?1", [i64::MAX / 2]);
    assert_eq!(cache.get_raw("k").await.unwrap(), None, "claimed size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_is_not_private_is_refused() {
    // Writable by others: anybody could plant or swap rows and files.
    let open_dir = TempDir::new("hostile-0777");
    std::fs::set_permissions(&open_dir.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = open(&open_dir.path, "")
        .set("k", &1u32)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("writable by other users"), "{err}");
    assert!(
        side_files(&open_dir.path).is_empty() && !open_dir.path.join("shard-000.db").exists(),
        "nothing is written there"
    );

    // Owned by another user: they could read everything and swap files.
    if unsafe_geteuid() == 0 {
        let foreign = TempDir::new("hostile-foreign");
        std::os::unix::fs::chown(&foreign.path, Some(65534), Some(65534)).unwrap();
        let err = open(&foreign.path, "")
            .set("k", &1u32)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("owned by uid 65534"), "{err}");
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root, which the foreign-owner case needs"
        );
        eprintln!("skipped the foreign-owner case: it needs root to chown a directory");
    }
}

fn unsafe_geteuid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_directory_and_its_files_are_private_to_the_user() {
    let parent = TempDir::new("hostile-private");
    let dir = parent.path.join("cache");
    let cache = open(&dir, "");
    cache.set_raw("small", vec![1u8; 10]).await.unwrap();
    cache.set_raw("large", vec![1u8; 1000]).await.unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the directory");
    assert_eq!(mode(&dir.join("values")), 0o700, "the values directory");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{path:?}");
        }
    }
    for file in side_files(&dir) {
        assert_eq!(mode(&dir.join("values").join(&file)), 0o600, "{file}");
    }
}

#[test]
fn the_default_directory_is_per_user() {
    let dir = cashews::disk::default_directory();
    let text = dir.display().to_string();
    let home = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    match home {
        Some(base) if base.is_absolute() => assert_eq!(dir, base.join("cashews")),
        _ => assert!(
            text.ends_with(&format!("cashews-{}", unsafe_geteuid())),
            "{text}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_the_wrong_sql_type_are_misses_that_can_be_overwritten_and_deleted() {
    let dir = TempDir::new("hostile-types");
    let cache = open(&dir.path, "");
    for (column, poison) in [
        ("value", "'text, not a blob'"),
        ("value", "42"),
        ("kind", "'zero'"),
        ("file", "x'00ff'"),
        ("expires_at", "'never'"),
        ("size", "'big'"),
    ] {
        cache.set("k", &7u32).await.unwrap();
        tamper(
            &dir.path,
            &format!("UPDATE cache SET {column} = {poison}"),
            [],
        );
        let what = format!("{column} = {poison}");
        assert_eq!(cache.get::<u32>("k").await.unwrap(), None, "{what}: get");
        cache.set("k", &8u32).await.unwrap();
        assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(8), "{what}");
        tamper(
            &dir.path,
            &format!("UPDATE cache SET {column} = {poison}"),
            [],
        );
        cache.delete("k").await.unwrap();
        assert_eq!(cache.get_keys_count().await.unwrap(), 0, "{what}: delete");
        // Every other command on it answers too.
        cache.set("k", &7u32).await.unwrap();
        tamper(
            &dir.path,
            &format!("UPDATE cache SET {column} = {poison}"),
            [],
        );
        assert_eq!(
            cache.incr("k").await.unwrap(),
            1,
            "{what}: incr starts anew"
        );
        cache.delete("k").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_and_temporary_side_files_are_swept() {
    let dir = TempDir::new("hostile-orphans");
    // A grace period of zero: every file no row names is an orphan.
    let cache = open(&dir.path, "&check_interval=20ms&orphan_grace=0s");
    cache.set_raw("kept", vec![1u8; 1000]).await.unwrap();
    let kept = side_files(&dir.path);
    let values = dir.path.join("values");
    // What a process killed between writing a file and committing its row
    // leaves behind, and an unrelated file that is not the backend's.
    std::fs::write(
        values.join("s000-0123456789abcdef0123456789abcdef.val"),
        b"x",
    )
    .unwrap();
    std::fs::write(
        values.join(".s000-0123456789abcdef0123456789abcdee.val.tmp"),
        b"x",
    )
    .unwrap();
    std::fs::write(values.join("README"), b"not ours").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut files = side_files(&dir.path);
        files.sort();
        let mut expected = kept.clone();
        expected.push("README".to_owned());
        expected.sort();
        if files == expected {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "left: {files:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        cache.get_raw("kept").await.unwrap().map(|v| v.len()),
        Some(1000)
    );
}

#[test]
fn a_failed_side_file_write_leaves_no_temporary_file() {
    let dir = TempDir::new("hostile-full");
    // A child process whose files may not grow past 64 KiB: the write of a
    // 200 KiB side file fails half-way, as on a full disk.
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "file_size_limited_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CASHEWS_LIMITED_DIR", &dir.path)
        .status()
        .unwrap();
    assert!(status.success(), "the child's checks failed");
    let files = side_files(&dir.path);
    assert_eq!(files.len(), 1, "only the small value's file: {files:?}");
    assert!(!files[0].ends_with(".tmp"), "{files:?}");
}

/// Not a test on its own: the child of the test above (it does nothing
/// unless started as one).
#[test]
fn file_size_limited_child() {
    let Some(dir) = std::env::var_os("CASHEWS_LIMITED_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cache = open(&dir, "");
        cache.set_raw("fits", vec![1u8; 1000]).await.unwrap();
        // SAFETY: plain libc calls with valid arguments; the process is this
        // child alone. A write past the limit fails with EFBIG instead of
        // raising SIGXFSZ.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: libc::RLIM_INFINITY,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        }
        let failed = cache.set_raw("too-big", vec![2u8; 200 * 1024]).await;
        assert!(failed.is_err(), "the write cannot succeed");
        assert_eq!(cache.get_raw("too-big").await.unwrap(), None);
        assert_eq!(
            cache.get_raw("fits").await.unwrap().map(|v| v.len()),
            Some(1000)
        );
    });
}
