use super::*;
use crate::metrics::Metrics;
use std::net::Ipv4Addr;

fn limits(total: usize, per: usize, trusted: &[&str]) -> Arc<ConnLimits> {
    let settings = ConnSettings {
        header_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        max_connections: total,
        max_per_client: per,
        trusted: trusted.iter().map(|t| t.parse().unwrap()).collect(),
    };
    ConnLimits::new(settings, Metrics::new().unwrap().conns.clone())
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

#[test]
fn per_client_cap_refuses_only_that_client() {
    let l = limits(10, 2, &[]);
    let a: Vec<_> = (0..2).map(|_| l.admit(ip(2)).unwrap()).collect();
    assert_eq!(l.admit(ip(2)).err(), Some(Refused::PerClient));
    let b = l.admit(ip(3)).unwrap();
    assert_eq!(l.open(), 3);
    drop(a);
    assert!(l.admit(ip(2)).is_ok(), "closing frees the client's slots");
    drop(b);
    assert!(l.per_ip.lock().unwrap().len() <= 1, "entries leave with their last connection");
}

#[test]
fn total_cap_refuses_everyone_and_trusted_proxies_skip_the_per_client_cap() {
    let l = limits(3, 1, &["127.0.0.9/32"]);
    let held: Vec<_> = (0..3).map(|_| l.admit(ip(9)).unwrap()).collect();
    assert_eq!(l.admit(ip(4)).err(), Some(Refused::Total));
    drop(held);
    assert_eq!(l.open(), 0);
}

#[test]
fn ipv4_mapped_peers_count_as_their_ipv4_address() {
    let l = limits(10, 1, &[]);
    let _a = l.admit(ip(5)).unwrap();
    let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 5).to_ipv6_mapped());
    assert_eq!(l.admit(mapped).err(), Some(Refused::PerClient));
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let l = limits(10, 10, &[]);
    let a = Activity::new();
    let out = watch(std::future::pending::<()>(), &a, &l).await;
    assert_eq!(out.err(), Some(Closed::HeaderTimeout));
}

#[tokio::test(start_paused = true)]
async fn after_a_request_the_idle_timeout_applies_and_a_new_head_restarts_the_header_clock() {
    let l = limits(10, 10, &[]);
    let a = Activity::new();
    drop(a.request_started());
    let started = Instant::now();
    assert_eq!(watch(std::future::pending::<()>(), &a, &l).await.err(), Some(Closed::IdleTimeout));
    assert!(started.elapsed() >= Duration::from_secs(5));
    a.bytes_read();
    assert_eq!(watch(std::future::pending::<()>(), &a, &l).await.err(), Some(Closed::HeaderTimeout));
}

/// The watchdog is never told of a request: a head that starts while the connection is idle must still be cut
/// at its own header deadline (2 s after its first byte), well before the idle deadline (5 s after the last
/// request) that was in force when the watchdog last looked.
#[tokio::test(start_paused = true)]
async fn a_head_that_starts_while_idle_is_cut_at_its_header_deadline_not_the_idle_one() {
    let l = limits(10, 10, &[]);
    let a = Activity::new();
    drop(a.request_started());
    let idle_from = Instant::now();
    let slow_head = async {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        a.bytes_read();
        std::future::pending::<()>().await
    };
    assert_eq!(watch(slow_head, &a, &l).await.err(), Some(Closed::HeaderTimeout));
    assert_eq!(idle_from.elapsed(), Duration::from_millis(4_500), "cut 2 s after the head's first byte");
}

#[tokio::test(start_paused = true)]
async fn nothing_is_closed_while_a_request_is_in_flight() {
    let l = limits(10, 10, &[]);
    let a = Activity::new();
    let done = a.request_started();
    let conn = async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(done);
        7
    };
    assert_eq!(watch(conn, &a, &l).await.ok(), Some(7));
}
