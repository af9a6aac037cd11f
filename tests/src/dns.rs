//! A tiny authoritative DNS server on loopback whose answers a test changes while it runs.
//!
//! Stands in for the cluster DNS that answers a headless Service's name with one record per ready pod, so
//! discovery is tested end to end (real UDP DNS messages, the gateway's real resolver) with records that
//! appear and disappear on demand. Names not in the table get NXDOMAIN.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

/// A running DNS server; stops when dropped.
pub struct TestDns {
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<IpAddr>>>>,
    queries: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestDns {
    /// Starts on 127.0.0.1 with an OS-chosen port.
    pub async fn spawn() -> anyhow::Result<TestDns> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let records: Arc<Mutex<HashMap<String, Vec<IpAddr>>>> = Arc::default();
        let queries: Arc<Mutex<u64>> = Arc::default();
        let task = tokio::spawn({
            let records = Arc::clone(&records);
            let queries = Arc::clone(&queries);
            async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let Ok((n, peer)) = socket.recv_from(&mut buf).await else { return };
                    *queries.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                    let Some(reply) =
                        answer(&buf[..n], &records.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
                    else {
                        continue;
                    };
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Ok(TestDns { addr, records, queries, task })
    }

    /// Sets the addresses `name` resolves to (an empty list: NXDOMAIN).
    pub fn set(&self, name: &str, ips: &[IpAddr]) {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, ips.to_vec());
    }

    /// Queries answered so far.
    pub fn queries(&self) -> u64 {
        *self.queries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(query: &[u8], records: &HashMap<String, Vec<IpAddr>>) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.authoritative = true;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    let mut found = false;
    for question in &q.queries {
        let key = question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
        if let Some(ips) = records.get(&key).filter(|ips| !ips.is_empty()) {
            found = true;
            for ip in ips {
                // TTL 0: every lookup is answered afresh, as discovery wants.
                let rdata = match (ip, question.query_type()) {
                    (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                    (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                r.add_answer(Record::from_rdata(question.name().clone(), 0, rdata));
            }
        }
        r.add_query(question.clone());
    }
    if !found {
        r.metadata.response_code = ResponseCode::NXDomain;
    }
    r.to_vec().ok()
}
