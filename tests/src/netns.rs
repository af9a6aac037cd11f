//! A network namespace the test makes for itself, joined to the test's own namespace by a veth pair, with
//! the faults the chaos test applies to what crosses it: packet loss and a partition (iptables-legacy in
//! the namespace) and, through [`crate::toxiproxy`], delay and a bandwidth cap (this kernel has no netem
//! qdisc).
//!
//! Network safety: every address involved is the pair's own /30 (10.213.N.1 here, 10.213.N.2 inside) or
//! loopback inside the namespace, and every rule lives inside the namespace, so nothing reaches or changes
//! the host's network. The namespace is deleted when [`Netns`] is dropped (a failing test unwinds through
//! the drop); one left by a killed test process is swept by the next [`Netns::create`].

use std::process::Command;

/// Names start with this, then the pid of the process that made it (for the sweep of dead owners).
const PREFIX: &str = "iotexchaos-";

/// A namespace and its veth pair.
pub struct Netns {
    /// `iotexchaos-<pid>`.
    pub name: String,
    /// The address of the test's end of the pair.
    pub host_ip: String,
    /// The address of the namespace's end of the pair (where the namespace's services listen).
    pub inner_ip: String,
    inner_if: String,
}

/// Runs `cmd args`, failing with its stderr.
fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| anyhow::anyhow!("{cmd}: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd} {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Deletes namespaces of ours whose owning process is gone (a test killed before its drop ran).
fn sweep() {
    let Ok(list) = run("ip", &["netns", "list"]) else { return };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|p| p.parse::<i32>().ok()) else { continue };
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
            kill_inside(name);
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// SIGKILLs every process still in namespace `name` (deleting a namespace does not stop its processes).
fn kill_inside(name: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", name]) {
        for pid in pids.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

impl Netns {
    /// Makes `iotexchaos-<pid>` with loopback up and a veth pair to this namespace. Fails naming the
    /// command that was refused (no CAP_NET_ADMIN, no iproute2).
    pub fn create() -> anyhow::Result<Netns> {
        sweep();
        let pid = std::process::id();
        let name = format!("{PREFIX}{pid}");
        // Interface names are at most 15 bytes; the pair's /30 comes from the pid so two test processes
        // never share one.
        let (host_if, inner_if) = (format!("ich{}", pid % 1_000_000), format!("icn{}", pid % 1_000_000));
        let octet = pid % 250 + 1;
        let (host_ip, inner_ip) = (format!("10.213.{octet}.1"), format!("10.213.{octet}.2"));
        let _ = run("ip", &["netns", "del", &name]);
        run("ip", &["netns", "add", &name])?;
        let ns = Netns { name, host_ip, inner_ip, inner_if };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        run("ip", &["link", "add", &host_if, "type", "veth", "peer", "name", &ns.inner_if])?;
        run("ip", &["link", "set", &ns.inner_if, "netns", &ns.name])?;
        run("ip", &["addr", "add", &format!("{}/30", ns.host_ip), "dev", &host_if])?;
        run("ip", &["link", "set", &host_if, "up"])?;
        ns.exec(&["ip", "addr", "add", &format!("{}/30", ns.inner_ip), "dev", &ns.inner_if])?;
        ns.exec(&["ip", "link", "set", &ns.inner_if, "up"])?;
        Ok(ns)
    }

    /// Runs a command inside the namespace and waits for it.
    pub fn exec(&self, cmd: &[&str]) -> anyhow::Result<String> {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend_from_slice(cmd);
        run("ip", &args)
    }

    /// The prefix that runs a program inside the namespace (`ip netns exec NAME`).
    pub fn wrap(&self) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.name.clone()]
    }

    fn iptables(&self, op: &str, chain: &str, port: u16, extra: &[&str]) -> anyhow::Result<()> {
        let p = port.to_string();
        let dir = if chain == "INPUT" { "--dport" } else { "--sport" };
        let iface = if chain == "INPUT" { "-i" } else { "-o" };
        let mut cmd = vec!["iptables-legacy", op, chain, iface, &self.inner_if, "-p", "tcp", dir, &p];
        cmd.extend_from_slice(extra);
        cmd.extend_from_slice(&["-j", "DROP"]);
        self.exec(&cmd).map(|_| ())
    }

    /// Drops each packet to or from TCP `ports` inside the namespace with probability `p` (0..1).
    pub fn loss(&self, ports: &[u16], p: f64) -> anyhow::Result<()> {
        self.loss_rules("-A", ports, p)
    }

    /// Removes what [`Netns::loss`] added.
    pub fn heal_loss(&self, ports: &[u16], p: f64) -> anyhow::Result<()> {
        self.loss_rules("-D", ports, p)
    }

    fn loss_rules(&self, op: &str, ports: &[u16], p: f64) -> anyhow::Result<()> {
        let p = format!("{p}");
        let stat = ["-m", "statistic", "--mode", "random", "--probability", &p];
        for &port in ports {
            self.iptables(op, "INPUT", port, &stat)?;
            self.iptables(op, "OUTPUT", port, &stat)?;
        }
        Ok(())
    }

    /// Packets the DROP rules of [`Netns::loss`] and [`Netns::partition`] have dropped so far (iptables'
    /// own counters), so a test can show its fault was really in force rather than a rule that matched nothing.
    pub fn dropped(&self) -> anyhow::Result<u64> {
        let mut n = 0;
        for chain in ["INPUT", "OUTPUT"] {
            let out = self.exec(&["iptables-legacy", "-L", chain, "-n", "-v", "-x"])?;
            // Rule lines start with the packet count; DROP is the target column.
            n += out
                .lines()
                .filter(|l| l.split_whitespace().nth(2) == Some("DROP"))
                .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
                .sum::<u64>();
        }
        Ok(n)
    }

    /// Cuts TCP `ports` off from the other end of the pair, both ways (a partition of those services).
    pub fn partition(&self, ports: &[u16]) -> anyhow::Result<()> {
        for &port in ports {
            self.iptables("-A", "INPUT", port, &[])?;
            self.iptables("-A", "OUTPUT", port, &[])?;
        }
        Ok(())
    }

    /// Ends a [`Netns::partition`].
    pub fn heal_partition(&self, ports: &[u16]) -> anyhow::Result<()> {
        for &port in ports {
            self.iptables("-D", "INPUT", port, &[])?;
            self.iptables("-D", "OUTPUT", port, &[])?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_inside(&self.name);
        // Deleting the namespace deletes its end of the pair, and with it the test's end.
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("network namespace {} was not deleted: {e}", self.name);
        }
    }
}
