//! IoTeX's own clients through the gateway's native gRPC listener, on the real 5-node cluster: the proof that
//! what an operator runs against a node runs unchanged against the gateway.
//!
//! - **ioctl**, IoTeX's operator CLI, built from the same pinned iotex-core module as the node
//!   (`scripts/install-iotex.sh ioctl`), with its endpoint set to the gateway (`ioctl config set endpoint
//!   127.0.0.1:PORT --insecure`): `bc info` and `account balance` answer as a node does, and `action transfer`,
//!   signed by ioctl from a keystore in its wallet directory, lands (receipt and nonce read straight from a
//!   node).
//! - **iotex-etl** 1.0.2 from PyPI (`scripts/install-iotex-etl.sh`): `export_blocks` of a range holding our
//!   transfers, through the gateway, is byte-for-byte the export straight from a node.
//! - **A node killed under both**: 30 ioctl reads (10 before the kill, 20 after) and an iotex-etl export that
//!   was paused after its first calls, the node killed, then resumed: every ioctl exits 0, the export equals the
//!   direct one, and iotex-etl logged no exception (it retries failed batches on its own, so its log is where a
//!   gateway error would show).
//!
//! ioctl reads passwords and keys only from a terminal (`account import` has no flag for them), so the test
//! writes a Web3 Secret Storage (V3) keystore file into ioctl's wallet directory itself and signs with
//! `--signer io1… -P PASSWORD -y`, the flags ioctl offers for scripts.

use alloy_primitives::{Address, B256, U256, hex, keccak256};
use iotex_injector::accounts::parse_key;
use iotex_injector::address::to_io;
use iotex_injector::mix::ActionKind;
use iotex_injector::native::Client;
use iotex_injector::native::client::parse_hash;
use iotex_injector::native::sign::{self, CoreParams};
use iotex_injector::signer::Call;
use iotex_tests::eventually;
use iotex_tests::gateway::{RunningGateway, TestGateway, sample};
use iotex_tests::iotex::Cluster;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(60);
/// One ioctl or iotex-etl run; far above what either takes on loopback (well under a second).
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// The gateway's count of a node's attempts that succeeded, up to the `upstream` label.
const OK_SERIES: &str = "iotex_gateway_upstream_requests_total{outcome=\"ok\",";
const RAU_PER_IOTX: u128 = 1_000_000_000_000_000_000;
/// ioctl's `-p` is in µIOTX.
const RAU_PER_MICRO_IOTX: u128 = 1_000_000_000_000;

/// A gateway over every node (`Cluster::gateway`, readiness URLs on), probed every `health_interval`.
async fn gateway(cluster: &Cluster, health_interval: &str) -> anyhow::Result<RunningGateway> {
    cluster
        .gateway(TestGateway::new().arg("--health-interval", health_interval).arg("--probe-timeout", "1s"), true)
        .await
}

/// Runs `scripts/<script> [arg]` (idempotent: a cached build or venv is reused at once) and returns the path
/// it prints last. Its progress lines go to the test's stderr.
async fn install(script: &str, arg: Option<&str>) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(script);
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(&path).args(arg).stdin(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
    // A cold build of ioctl compiles part of iotex-core: minutes on 2 cores; cached, well under a second.
    let out = tokio::time::timeout(Duration::from_secs(900), cmd.output()).await??;
    anyhow::ensure!(out.status.success(), "scripts/{script} failed ({}); its error is on stderr above", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().trim();
    anyhow::ensure!(Path::new(last).is_file(), "scripts/{script} printed no executable path (got {last:?})");
    Ok(PathBuf::from(last))
}

/// Runs a client process to completion (bounded), stdin closed.
async fn run(mut cmd: tokio::process::Command) -> anyhow::Result<Output> {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    Ok(tokio::time::timeout(RUN_LIMIT, cmd.output()).await??)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// ioctl with a home directory of its own (its config and wallet live in `$HOME/.config/ioctl/default`),
/// its endpoint set to `endpoint` without TLS.
struct Ioctl {
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Ioctl {
    async fn new(endpoint: &str) -> anyhow::Result<Ioctl> {
        let bin = install("install-iotex.sh", Some("ioctl")).await?;
        let home = tempfile::Builder::new().prefix("ioctl-home-").tempdir()?;
        let ioctl = Ioctl { bin, home };
        // ioctl's own way to point it at a node: the endpoint and "no TLS" are kept in its config file.
        ioctl.ok(&["config", "set", "endpoint", endpoint, "--insecure"]).await?;
        Ok(ioctl)
    }

    /// ioctl's wallet directory (its config's `wallet`, by default the config directory).
    fn wallet(&self) -> PathBuf {
        self.home.path().join(".config/ioctl/default")
    }

    /// One invocation. Without `-o json`: in JSON output mode ioctl prints an error and still exits 0.
    async fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args).env("HOME", self.home.path());
        run(cmd).await
    }

    /// One invocation that must exit 0; its stdout.
    async fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args).await?;
        anyhow::ensure!(
            out.status.success(),
            "ioctl {} exited {}: {}{}",
            args.join(" "),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        Ok(text(&out.stdout))
    }

    /// `bc info`: `Blockchain Node: ENDPOINT` then the chain meta as JSON.
    async fn chain_info(&self) -> anyhow::Result<serde_json::Value> {
        let out = self.ok(&["bc", "info"]).await?;
        parse_chain_info(&out)
    }

    /// `account balance ADDR`: `io1…: AMOUNT IOTX`; the amount in rau.
    async fn balance(&self, who: Address) -> anyhow::Result<u128> {
        let io = to_io(&who);
        let out = self.ok(&["account", "balance", &io]).await?;
        parse_balance(&out, &io)
    }
}

fn parse_chain_info(out: &str) -> anyhow::Result<serde_json::Value> {
    let json = out.split_once('\n').map(|(_, j)| j).ok_or_else(|| anyhow::anyhow!("odd bc info output: {out}"))?;
    Ok(serde_json::from_str(json)?)
}

fn parse_balance(out: &str, io: &str) -> anyhow::Result<u128> {
    let amount = out
        .trim()
        .strip_prefix(&format!("{io}: "))
        .and_then(|r| r.strip_suffix(" IOTX"))
        .ok_or_else(|| anyhow::anyhow!("odd balance output: {out}"))?;
    iotx_to_rau(amount)
}

/// `12.5` IOTX in rau (ioctl prints balances with up to 18 decimals, trailing zeros trimmed).
fn iotx_to_rau(s: &str) -> anyhow::Result<u128> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    anyhow::ensure!(frac.len() <= 18, "{s}: more than 18 decimals");
    let frac_rau: u128 = if frac.is_empty() { 0 } else { format!("{frac:0<18}").parse()? };
    Ok(int.parse::<u128>()? * RAU_PER_IOTX + frac_rau)
}

/// A gas price in rau as ioctl's `-p` wants it: µIOTX, decimals allowed.
fn micro_iotx(rau: u128) -> String {
    let (int, frac) = (rau / RAU_PER_MICRO_IOTX, rau % RAU_PER_MICRO_IOTX);
    if frac == 0 { int.to_string() } else { format!("{int}.{}", format!("{frac:012}").trim_end_matches('0')) }
}

/// Runs `openssl ARGS` with `input` on its stdin; its stdout.
fn openssl(args: &[&str], input: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("openssl (3.0 or newer) is needed to write ioctl's keystore: {e}"))?;
    child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?.write_all(input)?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "openssl {} failed: {}", args.first().unwrap_or(&""), text(&out.stderr));
    Ok(out.stdout)
}

/// Writes `key_hex` into ioctl's wallet directory as a Web3 Secret Storage (V3) keystore file, the format
/// ioctl's keystore (go-ethereum's `accounts/keystore`) reads: PBKDF2-HMAC-SHA256 of the password, AES-128-CTR
/// of the key (both by the openssl CLI; the workspace has no AES crate), and the MAC, Keccak-256 of the
/// derived key's second half and the ciphertext. Salt and IV are derived from the address: this keystore
/// holds a public test key for one test run and is never reused. Returns the key's address.
fn write_keystore(wallet: &Path, key_hex: &str, password: &str) -> anyhow::Result<Address> {
    let address = parse_key("key", key_hex)?.address();
    let secret = hex::decode(key_hex.trim_start_matches("0x"))?;
    let salt = keccak256([b"ioctl-keystore-salt".as_slice(), address.as_slice()].concat());
    let iv_hash = keccak256([b"ioctl-keystore-iv".as_slice(), address.as_slice()].concat());
    let iv = &iv_hash[..16];
    let iterations = 4096;
    let derived = openssl(
        &[
            "kdf",
            "-keylen",
            "32",
            "-kdfopt",
            "digest:SHA256",
            "-kdfopt",
            &format!("pass:{password}"),
            "-kdfopt",
            &format!("hexsalt:{}", hex::encode(salt)),
            "-kdfopt",
            &format!("iter:{iterations}"),
            "-binary",
            "PBKDF2",
        ],
        &[],
    )?;
    anyhow::ensure!(derived.len() == 32, "openssl kdf gave {} bytes, not 32", derived.len());
    let ciphertext =
        openssl(&["enc", "-aes-128-ctr", "-K", &hex::encode(&derived[..16]), "-iv", &hex::encode(iv)], &secret)?;
    let mac = keccak256([&derived[16..], ciphertext.as_slice()].concat());
    let id = hex::encode(&keccak256(address.as_slice())[..16]);
    let keystore = serde_json::json!({
        "address": hex::encode(address),
        "crypto": {
            "cipher": "aes-128-ctr",
            "ciphertext": hex::encode(&ciphertext),
            "cipherparams": { "iv": hex::encode(iv) },
            "kdf": "pbkdf2",
            "kdfparams": { "c": iterations, "dklen": 32, "prf": "hmac-sha256", "salt": hex::encode(salt) },
            "mac": hex::encode(mac),
        },
        "id": format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..]),
        "version": 3,
    });
    std::fs::create_dir_all(wallet)?;
    std::fs::write(wallet.join(format!("UTC--test--{}", hex::encode(address))), keystore.to_string())?;
    Ok(address)
}

/// `count` transfers of 1 rau from `key_hex` to `to`, sent through `via`; waits for every receipt from
/// `node` (a node, not the gateway). Returns the action hashes and the heights they landed in.
async fn transfers(
    via: &Client,
    node: &Client,
    key_hex: &str,
    to: Address,
    count: u64,
) -> anyhow::Result<(Vec<B256>, Vec<u64>)> {
    let key = parse_key("key", key_hex)?;
    let meta = via.chain_meta().await?;
    let p = CoreParams { chain_id: meta.chain_id, gas_price: via.gas_price().await? };
    let first = via.pending_nonce(key.address()).await?;
    let call = Call { to, value: U256::from(1u8), input: alloy_primitives::Bytes::new(), gas_limit: 21_000 };
    let mut hashes = Vec::new();
    for nonce in first..first + count {
        let s = sign::seal(&key, &sign::pubkey(&key), sign::core_for(ActionKind::Transfer, &call, nonce, p))?;
        hashes.push(via.send(s.action).await?);
    }
    let mut heights = Vec::new();
    for h in &hashes {
        let r = node.wait_receipt(*h, WAIT).await?.ok_or_else(|| anyhow::anyhow!("no receipt for {h}"))?;
        anyhow::ensure!(r.status == 1, "transfer {h} failed: status {}", r.status);
        heights.push(r.blk_height);
    }
    Ok((hashes, heights))
}

/// Waits until every node's head is at least `height` (so a per-call balanced read of it is final everywhere).
async fn wait_all_at(cluster: &Cluster, height: u64) -> anyhow::Result<()> {
    eventually(Duration::from_secs(180), &format!("every node at height {height}"), || async {
        let heads = cluster.heads().await;
        heads.iter().all(|h| h.is_some_and(|h| h >= height)).then_some(())
    })
    .await
}

/// One `iotexetl export_blocks` run's output directory and log.
struct Export {
    dir: tempfile::TempDir,
    log: String,
}

impl Export {
    /// The export's files (`blocks.json`, `actions.json`, `logs.json`), name and content, by name.
    fn files(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.path())? {
            let e = e?;
            out.push((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path())?));
        }
        out.sort();
        Ok(out)
    }

    /// The same files with their lines sorted: with several workers iotex-etl writes batches in the order
    /// they finish, which differs from run to run even against one node.
    fn sorted(&self) -> anyhow::Result<Vec<(String, Vec<String>)>> {
        Ok(self
            .files()?
            .into_iter()
            .map(|(n, b)| {
                let mut lines: Vec<String> = text(&b).lines().map(str::to_owned).collect();
                lines.sort();
                (n, lines)
            })
            .collect())
    }

    /// Fails naming the first file and line where `self` and `other` differ.
    fn assert_same(&self, other: &Export, sorted: bool, what: &str) -> anyhow::Result<()> {
        let (a, b) = if sorted {
            (self.sorted()?, other.sorted()?)
        } else {
            let split = |f: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<String>)> {
                f.into_iter().map(|(n, b)| (n, text(&b).split_inclusive('\n').map(str::to_owned).collect())).collect()
            };
            (split(self.files()?), split(other.files()?))
        };
        let names = |f: &[(String, Vec<String>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b), "{what}: the exports wrote different files");
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            if let Some(i) = (0..x.len().max(y.len())).find(|&i| x.get(i) != y.get(i)) {
                panic!("{what}: {name} differs first at line {}: {:?} vs {:?}", i + 1, x.get(i), y.get(i));
            }
        }
        Ok(())
    }

    fn lines(&self, file: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let body = std::fs::read_to_string(self.dir.path().join(file))?;
        Ok(body.lines().map(serde_json::from_str).collect::<Result<_, _>>()?)
    }

    /// iotex-etl retries a failed batch itself (one block at a time, 5 tries) and only logs the exception,
    /// so a call that failed anywhere shows here and nowhere else.
    fn assert_no_retry(&self, what: &str) {
        let bad: Vec<&str> = self
            .log
            .lines()
            .filter(|l| l.contains("exception") || l.contains("Traceback") || l.contains("Retry"))
            .collect();
        assert!(bad.is_empty(), "iotex-etl ({what}) hit errors it retried: {bad:?}");
    }
}

/// The `iotexetl export_blocks` command for `[start, end]` from `grpc://ADDR`, `workers` workers and batches of
/// `batch` blocks, into a fresh directory.
fn export_cmd(
    etl: &Path,
    addr: &str,
    (start, end): (u64, u64),
    (workers, batch): (u32, u32),
) -> anyhow::Result<(tokio::process::Command, tempfile::TempDir)> {
    let dir = tempfile::Builder::new().prefix("iotex-etl-").tempdir()?;
    let mut cmd = tokio::process::Command::new(etl);
    cmd.arg("export_blocks")
        .args(["-s", &start.to_string(), "-e", &end.to_string()])
        .args(["-p", &format!("grpc://{}", addr.trim_start_matches("http://"))])
        .args(["-w", &workers.to_string(), "-b", &batch.to_string()])
        .arg("-o")
        .arg(dir.path());
    Ok((cmd, dir))
}

async fn export(etl: &Path, addr: &str, range: (u64, u64), shape: (u32, u32)) -> anyhow::Result<Export> {
    let (cmd, dir) = export_cmd(etl, addr, range, shape)?;
    let out = run(cmd).await?;
    let log = text(&out.stderr);
    anyhow::ensure!(out.status.success(), "iotexetl export_blocks from {addr} exited {}: {log}", out.status);
    Ok(Export { dir, log })
}

#[tokio::test]
async fn ioctl_reads_the_chain_and_sends_a_transfer_through_the_gateway() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    cluster.wait_synced(1, WAIT).await?;
    let gw = gateway(cluster, "250ms").await?;
    let ioctl = Ioctl::new(gw.grpc.trim_start_matches("http://")).await?;
    let node = Client::new(&info.nodes[0].grpc, Duration::from_secs(10))?;

    // `bc info`: the nodes' chain meta.
    let meta = ioctl.chain_info().await?;
    assert_eq!(meta["chainID"].as_u64(), Some(info.native_chain_id), "{meta}");
    let height = meta["height"].as_u64().ok_or_else(|| anyhow::anyhow!("no height in {meta}"))?;
    let tip = node.chain_meta().await?.height;
    assert!(height.abs_diff(tip) <= 2, "ioctl's height {height} vs node-0's {tip}");

    // `account balance`: a funded account nothing spends from in this test, as the node has it.
    let rich = parse_key("key", &info.funded_keys[2])?.address();
    assert_eq!(U256::from(ioctl.balance(rich).await?), node.balance(rich).await?);

    // `action transfer`, signed by ioctl from its keystore, sent through the gateway; checked on a node.
    let password = "ioctl-test-password";
    iotex_tests::capture::register_secret("ioctl-password", password);
    let sender = write_keystore(&ioctl.wallet(), &info.funded_keys[1], password)?;
    let recipient = Address::from_slice(&keccak256(b"iotex_grpc_clients: ioctl's recipient")[12..]);
    let (nonce_before, balance_before) = (node.pending_nonce(sender).await?, node.balance(recipient).await?);
    let gas_price = micro_iotx(node.gas_price().await?);
    let amount_rau = 3 * RAU_PER_IOTX / 2;
    let out = ioctl
        .ok(&[
            "action",
            "transfer",
            &to_io(&recipient),
            "1.5",
            "-s",
            &to_io(&sender),
            "-P",
            password,
            "-y",
            "-l",
            "10000",
            "-p",
            &gas_price,
        ])
        .await?;
    // "… query this action by hash: https://iotexscan.io/action/<hash>"
    let hash = out
        .trim()
        .rsplit('/')
        .next()
        .and_then(parse_hash)
        .ok_or_else(|| anyhow::anyhow!("no action hash in ioctl's output: {out}"))?;
    let receipt = node.wait_receipt(hash, WAIT).await?.ok_or_else(|| anyhow::anyhow!("{hash} not included"))?;
    assert_eq!(receipt.status, 1, "the transfer succeeded");
    assert_eq!(node.pending_nonce(sender).await?, nonce_before + 1, "the sender's nonce rose by one");
    assert_eq!(node.balance(recipient).await?, balance_before + U256::from(amount_rau));
    // And ioctl reads the new balance through the gateway once every node has the block.
    wait_all_at(cluster, receipt.blk_height).await?;
    assert_eq!(U256::from(ioctl.balance(recipient).await?), balance_before + U256::from(amount_rau));
    println!(
        "ioctl through the gateway: bc info at height {height}, balance, transfer {hash} included at height {} \
         with nonce {nonce_before}",
        receipt.blk_height
    );
    cluster.wait_synced(1, WAIT).await?;
    Ok(())
}

#[tokio::test]
async fn iotex_etl_exports_the_same_blocks_through_the_gateway_as_from_a_node() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    cluster.wait_synced(1, WAIT).await?;
    let etl = install("install-iotex-etl.sh", None).await?;
    let gw = gateway(cluster, "250ms").await?;
    let via = Client::new(gw.grpc.trim_start_matches("http://"), Duration::from_secs(10))?;
    let node = Client::new(&info.nodes[0].grpc, Duration::from_secs(10))?;

    // 20 transfers through the gateway, so the range holds user actions beside each block's reward grant.
    let to = Address::from_slice(&keccak256(b"iotex_grpc_clients: iotex-etl's recipient")[12..]);
    let (hashes, heights) = transfers(&via, &node, &info.funded_keys[4], to, 20).await?;
    let lo = heights.iter().min().copied().unwrap_or(1);
    let hi = heights.iter().max().copied().unwrap_or(1);
    let range = (lo.saturating_sub(3).max(1), hi + 2);
    wait_all_at(cluster, range.1 + 1).await?;

    // One worker, one block per call: iotex-etl writes in block order, so the files compare as they are.
    let direct = export(&etl, &info.nodes[0].grpc, range, (1, 1)).await?;
    let through = export(&etl, &gw.grpc, range, (1, 1)).await?;
    // iotex-etl's defaults (5 workers, 10 blocks per call): the same lines, in the order batches finished.
    let parallel = export(&etl, &gw.grpc, range, (5, 10)).await?;
    for (e, what) in [(&direct, "direct"), (&through, "through the gateway"), (&parallel, "5 workers")] {
        e.assert_no_retry(what);
    }
    let files = direct.files()?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["actions.json", "blocks.json", "logs.json"]);
    direct.assert_same(&through, false, "node-0 vs the gateway, byte for byte")?;
    direct.assert_same(&parallel, true, "node-0 vs the gateway with 5 workers, lines sorted")?;

    // The range is what we meant: every block, our 20 transfers among the actions.
    let blocks = through.lines("blocks.json")?;
    assert_eq!(blocks.len() as u64, range.1 - range.0 + 1);
    let actions = through.lines("actions.json")?;
    let ours = actions
        .iter()
        .filter(|a| a["action_type"] == "transfer")
        .filter(|a| hashes.iter().any(|h| a["hash"].as_str() == Some(hex::encode(h).as_str())))
        .count();
    assert_eq!(ours, hashes.len(), "every transfer is in the export");
    println!(
        "iotex-etl: blocks {}..={}: {} blocks, {} actions ({} of them our transfers), {} logs; identical through \
         the gateway and from node-0",
        range.0,
        range.1,
        blocks.len(),
        actions.len(),
        ours,
        through.lines("logs.json")?.len()
    );
    Ok(())
}

/// ioctl reads (`bc info` and `account balance` in turn) run one after another; each one's output, or what
/// went wrong.
async fn ioctl_reads(ioctl: &Ioctl, who: Address, n: usize, chain_id: u64) -> Vec<Result<(), String>> {
    let mut results = Vec::new();
    for i in 0..n {
        let r = if i % 2 == 0 {
            ioctl.chain_info().await.and_then(|m| {
                anyhow::ensure!(m["chainID"].as_u64() == Some(chain_id), "bc info answered {m}");
                Ok(())
            })
        } else {
            ioctl.balance(who).await.map(|_| ())
        };
        results.push(r.map_err(|e| e.to_string()));
        // A short pause, so the reads after the kill spread over the time the gateway takes to see it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    results
}

// Long because the scenario is one sequence: reference export, paused export, reads before, kill, reads and
// resumed export after, then the checks on all of it.
#[tokio::test]
async fn a_node_killed_under_ioctl_and_iotex_etl_costs_them_nothing() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    let info = cluster.info();
    cluster.wait_synced(1, WAIT).await?;
    let etl = install("install-iotex-etl.sh", None).await?;
    // No probe after the first round (an hour apart): the gateway learns of the death only from the clients'
    // own calls (a refused connection, retried on another node; ejection after 3 in a row), so the calls after
    // the kill meet the dead node. With frequent probes a probe often got there first (the node's process
    // takes about a second to go), and then no call ever met it.
    let gw = gateway(cluster, "3600s").await?;
    let ioctl = Ioctl::new(gw.grpc.trim_start_matches("http://")).await?;
    let via = Client::new(gw.grpc.trim_start_matches("http://"), Duration::from_secs(10))?;
    let node = Client::new(&info.nodes[0].grpc, Duration::from_secs(10))?;

    // A range with user actions in it: 10 transfers, then every block from 1 to just below the tip.
    let to = Address::from_slice(&keccak256(b"iotex_grpc_clients: the kill's recipient")[12..]);
    let (_, heights) = transfers(&via, &node, &info.funded_keys[0], to, 10).await?;
    // At least 20 blocks, so the part of the export left after its first progress line (10 %) is most of it.
    let end = (heights.iter().max().copied().unwrap_or(1) + 1).max(20);
    wait_all_at(cluster, end + 1).await?;
    let range = (1, end);
    let reference = export(&etl, &info.nodes[0].grpc, range, (1, 1)).await?;
    reference.assert_no_retry("direct, before the kill");

    // The export through the gateway, one block per call: paused (SIGSTOP) at its first progress line, i.e.
    // with calls made and most still to come, so the kill lands inside it.
    let (mut cmd, dir) = export_cmd(&etl, &gw.grpc, range, (1, 1))?;
    let mut child = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).spawn()?;
    let pid = nix::unistd::Pid::from_raw(child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0));
    let mut lines = BufReader::new(child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?).lines();
    let mut log = String::new();
    let paused = tokio::time::timeout(WAIT, async {
        while let Some(l) = lines.next_line().await? {
            log.push_str(&l);
            log.push('\n');
            if l.contains("items processed") {
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP)?;
                return anyhow::Ok(true);
            }
        }
        Ok(false)
    })
    .await??;
    assert!(paused, "the export ended before its first progress line: {log}");
    assert!(child.try_wait()?.is_none(), "the export was still running when paused");

    // 10 reads before the kill; then the kill of the delegate the balancer sent most calls to so far (the
    // fastest by its latency estimate, so the one it keeps picking); then 20 reads and the rest of the export
    // beside them. node-0, the reference, is never the victim.
    let rich = parse_key("key", &info.funded_keys[2])?.address();
    let mut reads = ioctl_reads(&ioctl, rich, 10, info.native_chain_id).await;
    let before = gw.metrics().await?;
    let served = |m: &str, n: &str| sample(m, &format!("{OK_SERIES}upstream=\"{n}\"}}")).unwrap_or(0.0);
    let victim = (1..info.nodes.len())
        .max_by(|&a, &b| served(&before, &info.nodes[a].name).total_cmp(&served(&before, &info.nodes[b].name)))
        .ok_or_else(|| anyhow::anyhow!("no delegate to kill"))?;
    let name = info.nodes[victim].name.clone();
    let spread: Vec<String> = info.nodes.iter().map(|n| format!("{} {}", n.name, served(&before, &n.name))).collect();
    println!("calls served per node before the kill: {}; killing {name}", spread.join(", "));
    cluster.kill(victim).await?;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT)?;
    let rest = async {
        let mut rest = String::new();
        while let Some(l) = lines.next_line().await? {
            rest.push_str(&l);
            rest.push('\n');
        }
        let status = tokio::time::timeout(RUN_LIMIT, child.wait()).await??;
        anyhow::Ok((status, rest))
    };
    let (after, exported) = tokio::join!(ioctl_reads(&ioctl, rich, 20, info.native_chain_id), rest);
    reads.extend(after);
    let (status, rest) = exported?;
    log.push_str(&rest);
    let metrics = gw.metrics().await?;
    let tip = node.chain_meta().await?.height;
    cluster.restart(victim).await?;

    let failed: Vec<_> = reads.iter().enumerate().filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e))).collect();
    println!(
        "node {name} killed under ioctl and iotex-etl: {} ioctl reads, {} failed; export of blocks 1..={end}: {status}",
        reads.len(),
        failed.len()
    );
    // What the gateway saw: the victim's attempts and the retries they cost, and every answer's status.
    let seen: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("iotex_gateway_grpc_requests_total{")
                || l.starts_with("iotex_gateway_retries_total{")
                || (l.starts_with("iotex_gateway_upstream_requests_total{") && l.contains(&format!("\"{name}\"")))
        })
        .collect();
    println!("gateway metrics after the kill:\n{}", seen.join("\n"));
    let failed_on_victim: f64 = ["connect", "transport", "timeout"]
        .iter()
        .map(|o| {
            sample(&metrics, &format!("iotex_gateway_upstream_requests_total{{outcome=\"{o}\",upstream=\"{name}\"}}"))
        })
        .map(|v| v.unwrap_or(0.0))
        .sum();
    let not_ok: Vec<&&str> = seen
        .iter()
        .filter(|l| l.starts_with("iotex_gateway_grpc_requests_total{") && !l.contains("code=\"OK\""))
        .filter(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0))
        .collect();
    assert!(not_ok.is_empty(), "the gateway answered some calls with an error status: {not_ok:?}");
    assert!(failed.is_empty(), "ioctl invocations failed: {failed:?}");
    // The kill was felt: calls reached the dead node (and were answered from another).
    assert!(failed_on_victim >= 1.0, "no call met the dead node {name}; the kill proved nothing");
    assert!(status.success(), "the export exited {status}: {log}");
    let through = Export { dir, log };
    through.assert_no_retry("through the gateway, across the kill");
    reference.assert_same(&through, false, "node-0 vs the gateway across the kill, byte for byte")?;
    // The restarted node has caught up with the tip it missed before the next test reads from it.
    wait_all_at(cluster, tip).await?;
    cluster.wait_synced(1, Duration::from_secs(180)).await?;
    Ok(())
}

/// Runs the Node.js gRPC-web client (`scripts/install-grpc-web-client.sh`, connect-node) once: `Ok(stdout)`
/// for exit 0, `Err(stdout + stderr)` otherwise.
async fn web_call(
    client: &Path,
    url: &str,
    mode: &str,
    method: &str,
    request: &str,
    extra: &[&str],
) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(client).args(["--url", url, "--mode", mode, "--method", method, "--request", request]).args(extra);
    match run(cmd).await {
        Ok(out) if out.status.success() => Ok(text(&out.stdout)),
        Ok(out) => Err(format!("{}{}", text(&out.stdout), text(&out.stderr))),
        Err(e) => Err(e.to_string()),
    }
}

/// The client's JSON answer without `blockIdentifier`: `GetAccount` names the tip it read at, which may be a
/// block apart between two calls; nothing else in these answers moves with the chain.
fn without_tip(out: &str) -> anyhow::Result<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(out.trim())?;
    if let Some(o) = v.as_object_mut() {
        o.remove("blockIdentifier");
    }
    Ok(v)
}

/// A raw HTTP/1.1 exchange on loopback (the CORS preflight): the answer's head, lower-cased.
async fn http1_head(addr: &str, request: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf)).await??;
    Ok(String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase())
}

#[tokio::test]
async fn a_grpc_web_client_gets_through_the_gateway_what_a_grpc_client_gets_from_a_node() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let _only = Cluster::exclusive().await;
    cluster.wait_synced(1, WAIT).await?;
    let client = install("install-grpc-web-client.sh", None).await?;
    let g = TestGateway::new()
        .arg("--health-interval", "250ms")
        .arg("--probe-timeout", "1s")
        .arg("--grpc-web-cors-origin", "https://explorer.example");
    let gw = cluster.gateway(g, true).await?;
    let node = format!("http://{}", cluster.info().nodes[0].grpc);
    let who = to_io(&parse_key("key", &cluster.info().funded_keys[3])?.address());
    // Enough blocks (each has its reward action) that the ranges asked below are complete on every node.
    eventually(Duration::from_secs(120), "the chain at height 6", || async {
        (cluster.head(0).await.ok()? >= 6).then_some(())
    })
    .await?;
    // Answers that do not move with the chain: the first blocks' metas and actions, an account's nonce and balance
    // (nobody spends from key 3 here), a node's refusal.
    let calls: [(&str, String); 3] = [
        ("GetBlockMetas", r#"{"byIndex":{"start":"1","count":"3"}}"#.to_owned()),
        // (Not GetRawBlocks: a block's footer, the endorsements a node collected, is each node's own.)
        ("GetActions", r#"{"byIndex":{"start":"0","count":"3"}}"#.to_owned()),
        ("GetAccount", format!(r#"{{"address":"{who}"}}"#)),
    ];
    for (method, request) in &calls {
        let direct = web_call(&client, &node, "grpc", method, request, &[]).await.map_err(anyhow::Error::msg)?;
        for (mode, extra) in [("grpc-web", &[][..]), ("grpc-web", &["--http2"][..]), ("grpc-web-text", &[][..])] {
            let through =
                web_call(&client, &gw.grpc, mode, method, request, extra).await.map_err(anyhow::Error::msg)?;
            assert_eq!(
                without_tip(&through)?,
                without_tip(&direct)?,
                "{method} over {mode} {extra:?} through the gateway vs gRPC from node-0"
            );
        }
    }
    // A node's refusal reaches the browser with its code and message.
    let bad = r#"{"address":"io1notanaddress"}"#;
    let direct = web_call(&client, &node, "grpc", "GetAccount", bad, &[]).await.expect_err("a refusal");
    let through = web_call(&client, &gw.grpc, "grpc-web", "GetAccount", bad, &[]).await.expect_err("a refusal");
    let first = |s: &str| s.lines().find(|l| l.contains("\"error\"")).unwrap_or_default().to_owned();
    assert_eq!(first(&through), first(&direct), "the node's refusal, as gRPC-web");

    // CORS: a listed origin's preflight is allowed with what gRPC-web sends; another origin's is not.
    let addr = gw.grpc.trim_start_matches("http://");
    let preflight = |origin: &str| {
        format!(
            "OPTIONS /iotexapi.APIService/GetChainMeta HTTP/1.1\r\nhost: {addr}\r\norigin: {origin}\r\n\
             access-control-request-method: POST\r\naccess-control-request-headers: content-type,x-grpc-web\r\n\
             connection: close\r\n\r\n"
        )
    };
    let ok = http1_head(addr, &preflight("https://explorer.example")).await?;
    assert!(ok.starts_with("http/1.1 204"), "{ok}");
    assert!(ok.contains("access-control-allow-origin: https://explorer.example"), "{ok}");
    assert!(ok.contains("x-grpc-web"), "{ok}");
    let no = http1_head(addr, &preflight("https://elsewhere.example")).await?;
    assert!(no.starts_with("http/1.1 403") && !no.contains("access-control-allow-origin"), "{no}");

    // A node killed under gRPC-web calls: none of them fails.
    let victim = cluster.info().nodes.len() - 1;
    let name = cluster.node(victim).name;
    let mut outcomes = Vec::new();
    for i in 0..24 {
        if i == 8 {
            cluster.kill(victim).await?;
        }
        outcomes.push(web_call(&client, &gw.grpc, "grpc-web", "GetChainMeta", "{}", &[]).await);
    }
    gw.wait_state(&name, "down", WAIT).await?;
    cluster.restart(victim).await?;
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of 24 gRPC-web calls failed across the kill: {failed:?}", failed.len());
    let m = gw.metrics().await?;
    let web_ok = sample(&m, "iotex_gateway_grpc_requests_total{code=\"OK\",method=\"GetChainMeta\"}").unwrap_or(0.0);
    assert!(web_ok >= 24.0, "GetChainMeta OK counted {web_ok}");
    cluster.wait_synced(1, Duration::from_secs(180)).await?;
    Ok(())
}
