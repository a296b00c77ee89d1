//! Conformance of integer numbers, external ids and allocation pools.

use super::*;
use crate::model::{FreeAllocation, PoolEntry};
use crate::ports::{AllocationFilter, Lookup};

fn entries(ip: &str, ports: std::ops::RangeInclusive<u16>) -> Vec<PoolEntry> {
    ports.map(|port| PoolEntry { ip: ip.into(), port, alias: None, notes: None }).collect()
}

fn at(ip: &str, port: u16, primary: bool) -> Allocation {
    Allocation { ip: ip.into(), port, primary }
}

/// Numbers are assigned on insert, kept on update and never reused; external ids are unique
/// and matched exactly.
pub async fn numbers(store: &dyn Store) -> crate::Result<()> {
    let mut a = user("numbered_a");
    a.external_id = Some("ext-10".into());
    a.first_name = "Ada".into();
    a.last_name = "Lovelace".into();
    let a = store.create_user(&a).await.context("a")?;
    let b = store.create_user(&user("numbered_b")).await.context("b")?;
    assert!(b.number > a.number, "numbers grow");
    assert_eq!(store.get_user(a.id).await.context("get")?, a, "names and external id round-trip");
    store.delete_user(b.id).await.context("delete b")?;
    let c = store.create_user(&user("numbered_c")).await.context("c")?;
    assert!(c.number > b.number, "a deleted number is not reused");

    let find = |key| store.find_user(key);
    assert_eq!(find(Lookup::External("ext-10")).await.context("by external")?.map(|u| u.id), Some(a.id));
    assert_eq!(find(Lookup::External("ext-1")).await.context("prefix")?, None, "exact, not a prefix");
    assert_eq!(find(Lookup::External("ext-100")).await.context("longer")?, None, "exact, not a substring");
    assert_eq!(find(Lookup::Number(c.number)).await.context("by number")?.map(|u| u.id), Some(c.id));
    assert_eq!(find(Lookup::Number(b.number)).await.context("deleted")?, None);
    let mut dup = user("numbered_d");
    dup.external_id = a.external_id.clone();
    assert_eq!(kind(store.create_user(&dup).await), ErrorKind::Conflict, "duplicate external id");
    let mut steal = c.clone();
    steal.external_id = a.external_id.clone();
    assert_eq!(kind(store.update_user(&steal).await), ErrorKind::Conflict, "update to a taken external id");
    let mut renamed = c.clone();
    renamed.username = "numbered_c2".into();
    assert_eq!(store.update_user(&renamed).await.context("update")?.number, c.number, "update keeps the number");

    let w = world(store, "num").await?;
    let mut s1 = server("n1", w.owner.id, w.node.id, w.template.id, 27_001);
    s1.external_id = Some("svc-1".into());
    let s1 = store.create_server(&s1).await.context("s1")?;
    let mut s2 = server("n2", w.owner.id, w.node.id, w.template.id, 27_002);
    s2.external_id = Some("svc-1".into());
    assert_eq!(kind(store.create_server(&s2).await), ErrorKind::Conflict, "duplicate server external id");
    s2.external_id = None;
    let s2 = store.create_server(&s2).await.context("s2")?;
    assert!(s2.number > s1.number);
    let by = |key| store.find_server(key);
    assert_eq!(by(Lookup::External("svc-1")).await.context("by external")?.map(|s| s.id), Some(s1.id));
    assert_eq!(by(Lookup::External("svc")).await.context("prefix")?, None);
    assert_eq!(by(Lookup::Number(s2.number)).await.context("by number")?.map(|s| s.id), Some(s2.id));
    let mut steal = s2.clone();
    steal.external_id = Some("svc-1".into());
    assert_eq!(kind(store.update_server(&steal).await), ErrorKind::Conflict, "update to a taken external id");
    let mut moved = s2.clone();
    moved.description = "changed".into();
    moved.owner_id = w.other.id;
    assert_eq!(store.update_server(&moved).await.context("update")?.number, s2.number);
    assert_eq!(store.get_server(s2.id).await.context("moved")?.owner_id, w.other.id, "the owner changes");
    Ok(())
}

/// [`crate::ports::AllocationStore`] conformance, and servers claiming from the pool.
pub async fn pools(store: &dyn Store) -> crate::Result<()> {
    let w = world(store, "pool").await?;
    let node = w.node.id;
    assert_eq!(store.add_allocations(node, &entries("10.0.0.1", 4000..=4009)).await.context("add")?, 10);
    assert_eq!(store.add_allocations(node, &entries("10.0.0.1", 4005..=4014)).await.context("overlap")?, 5);
    assert_eq!(kind(store.add_allocations(NodeId::new(), &entries("10.0.0.1", 1..=1)).await), ErrorKind::NotFound);
    let of_node = AllocationFilter { node_id: Some(node), ..Default::default() };
    let listed = store.list_allocations(of_node, Page::default()).await.context("list")?;
    assert_eq!(listed.total, 15);
    assert!(listed.items.windows(2).all(|p| p[0].number < p[1].number), "ordered by number");
    assert!(listed.items.iter().all(|a| a.node_id == node && a.server_id.is_none()));
    let page = store.list_allocations(of_node, Page::new(10, 10)).await.context("page")?;
    assert_eq!((page.items.len(), page.total), (5, 15));

    let first = listed.items[0].clone();
    assert_eq!((first.ip.as_str(), first.port), ("10.0.0.1", 4000));
    assert_eq!(store.get_allocation(first.number).await.context("get")?, first);
    let mut named = first.clone();
    named.alias = Some("play.example.test".into());
    named.notes = Some("lobby".into());
    named.port = 9; // not changeable here
    let stored = store.update_allocation(&named).await.context("alias")?;
    assert_eq!(
        (stored.alias.as_deref(), stored.notes.as_deref(), stored.port),
        (Some("play.example.test"), Some("lobby"), 4000)
    );
    assert_eq!(kind(store.get_allocation(u64::MAX / 2).await), ErrorKind::NotFound);

    // A server claims a pool allocation, and one not in the pool is added for it.
    let mut s = server("pooled", w.owner.id, node, w.template.id, 0);
    s.allocations = vec![at("10.0.0.1", 4000, true), at("10.0.0.2", 5000, false)];
    let s = store.create_server(&s).await.context("claim")?;
    let held = AllocationFilter { server_id: Some(s.id), ..Default::default() };
    let mine = store.list_allocations(held, Page::default()).await.context("held")?;
    assert_eq!(mine.total, 2);
    assert_eq!(mine.items[0].number, first.number, "the pool's row is claimed, not copied");
    assert_eq!(mine.items[0].alias.as_deref(), Some("play.example.test"));
    assert!(mine.items.iter().all(|a| a.server_id == Some(s.id)));
    assert_eq!(store.held_by(&[s.id, ServerId::new()]).await.context("held by")?, mine.items, "one read");
    assert!(store.held_by(&[]).await.context("none")?.is_empty());
    let usage = store.usage_by_node().await.context("usage by node")?;
    let here = usage.iter().find(|(n, _)| *n == node).map(|(_, u)| *u).expect("the node has a server");
    assert_eq!(here, store.node_usage(node).await.context("usage")?, "the same totals as node_usage");

    // A clash is refused and nothing of the refused server is claimed.
    let mut clash = server("clash", w.owner.id, node, w.template.id, 0);
    clash.allocations = vec![at("10.0.0.1", 4001, true), at("10.0.0.1", 4000, false)];
    assert_eq!(kind(store.create_server(&clash).await), ErrorKind::Conflict, "held by another server");
    assert_eq!(kind(store.get_server(clash.id).await), ErrorKind::NotFound);
    let second = store.get_allocation(listed.items[1].number).await.context("4001")?;
    assert_eq!(second.server_id, None, "a refused claim leaves the pool as it was");
    assert_eq!(kind(store.delete_allocation(first.number).await), ErrorKind::Conflict, "held");
    store.delete_allocation(listed.items[14].number).await.context("delete free")?;
    assert_eq!(kind(store.get_allocation(listed.items[14].number).await), ErrorKind::NotFound);
    assert_eq!(kind(store.delete_allocation(listed.items[14].number).await), ErrorKind::NotFound);

    // Placement's pick: ports in range, free, and on a dedicated IP when asked.
    for _ in 0..5 {
        let want = FreeAllocation { ranges: vec![(4001, 4003)], dedicated_ip: false };
        let free = store.free_allocation(node, &want).await.context("free")?.expect("one fits");
        assert!((4001..=4003).contains(&free.port) && free.server_id.is_none() && free.ip == "10.0.0.1");
    }
    let none = FreeAllocation { ranges: vec![(4000, 4000)], dedicated_ip: false };
    assert_eq!(store.free_allocation(node, &none).await.context("taken")?, None);
    store.add_allocations(node, &entries("10.0.0.3", 6000..=6000)).await.context("ip 3")?;
    let dedicated = FreeAllocation { ranges: vec![], dedicated_ip: true };
    let free = store.free_allocation(node, &dedicated).await.context("dedicated")?.expect("10.0.0.3 is unused");
    assert_eq!((free.ip.as_str(), free.port), ("10.0.0.3", 6000));

    // Dropping an allocation releases it; a new one is claimed.
    let mut moved = s.clone();
    moved.allocations = vec![at("10.0.0.1", 4001, true)];
    let moved = store.update_server(&moved).await.context("move")?;
    assert_eq!(store.get_allocation(first.number).await.context("4000")?.server_id, None, "released");
    assert_eq!(store.get_allocation(second.number).await.context("4001")?.server_id, Some(s.id), "claimed");
    let mut bad = moved.clone();
    let other = store.create_server(&server("other", w.owner.id, node, w.template.id, 4002)).await.context("o")?;
    bad.allocations = vec![at("0.0.0.0", 4002, true)];
    assert_eq!(kind(store.update_server(&bad).await), ErrorKind::Conflict, "update into a held allocation");
    assert_eq!(store.get_allocation(second.number).await.context("4001")?.server_id, Some(s.id), "unchanged");

    // Deleting servers frees their allocations; deleting the node empties its pool.
    store.delete_server(s.id).await.context("delete server")?;
    store.delete_server(other.id).await.context("delete other")?;
    let left = store.list_allocations(of_node, Page::default()).await.context("after")?;
    assert!(left.items.iter().all(|a| a.server_id.is_none()), "all free again");
    assert_eq!(left.total, 17, "released allocations stay in the pool");
    store.delete_node(node).await.context("delete node")?;
    assert_eq!(store.list_allocations(of_node, Page::default()).await.context("gone")?.total, 0);
    Ok(())
}
