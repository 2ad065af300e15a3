//! Tree tests against a plain in-memory page store and a `BTreeMap` model.

use super::*;
use crate::pager::PageBuf;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

struct MemPages {
    size: usize,
    pages: Vec<PageBuf>,
    free: Vec<u64>,
}

impl MemPages {
    fn new(size: usize) -> Self {
        MemPages {
            size,
            pages: vec![Arc::new(vec![0; size])],
            free: Vec::new(),
        }
    }
    fn live(&self) -> usize {
        self.pages.len() - 1 - self.free.len()
    }
}

impl PageRead for MemPages {
    fn page(&self, no: u64) -> Result<PageBuf> {
        self.pages
            .get(no as usize)
            .cloned()
            .ok_or_else(|| Error::corrupt_page(no, "missing"))
    }
    fn page_size(&self) -> usize {
        self.size
    }
}

impl PageWrite for MemPages {
    fn page_mut(&mut self, no: u64) -> Result<&mut [u8]> {
        Ok(Arc::make_mut(&mut self.pages[no as usize]).as_mut_slice())
    }
    fn page_new(&mut self, no: u64) -> Result<&mut [u8]> {
        let p = self.page_mut(no)?;
        p.fill(0);
        Ok(p)
    }
    fn alloc_page(&mut self) -> Result<u64> {
        if let Some(no) = self.free.pop() {
            return Ok(no);
        }
        self.pages.push(Arc::new(vec![0; self.size]));
        Ok(self.pages.len() as u64 - 1)
    }
    fn free_page(&mut self, no: u64) -> Result<()> {
        assert!(!self.free.contains(&no), "double free of {no}");
        self.free.push(no);
        Ok(())
    }
}

/// xorshift64*, deterministic per seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn scan(m: &MemPages, root: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = Cursor::seek(m, root, None).unwrap();
    let mut out = Vec::new();
    while let Some((page, i)) = c.next(m).unwrap() {
        out.push((
            node::key(&page, i).to_vec(),
            TreeValue::from_leaf(m, &page, i).unwrap().into_vec(),
        ));
    }
    out
}

/// The keys a backward walk from `before` yields (None = from the end).
fn scan_back(m: &MemPages, root: u64, before: Option<&[u8]>) -> Vec<Vec<u8>> {
    let mut c = Cursor::seek_back(m, root, before).unwrap();
    let mut out = Vec::new();
    while let Some((page, i)) = c.prev(m).unwrap() {
        out.push(node::key(&page, i).to_vec());
    }
    out
}

/// Every page reachable from `root` (nodes and overflow chains).
fn reachable(m: &MemPages, root: u64) -> HashSet<u64> {
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(no) = stack.pop() {
        assert!(seen.insert(no), "page {no} reachable twice");
        let page = m.page(no).unwrap();
        if node::is_leaf(&page) {
            for i in 0..node::count(&page) {
                if let LeafValue::Overflow { first, len } = node::leaf_value(&page, i) {
                    for p in overflow::chain(m, first, len).unwrap() {
                        assert!(seen.insert(p));
                    }
                }
            }
        } else {
            for i in 0..=node::count(&page) {
                stack.push(node::child(&page, i));
            }
        }
    }
    seen
}

#[test]
fn sequential_inserts_fill_pages_and_split_root() {
    let mut m = MemPages::new(4096);
    let root = create(&mut m).unwrap();
    for id in 1..=20_000u64 {
        put(&mut m, root, &id.to_be_bytes(), &[7u8; 100]).unwrap();
    }
    let entries = scan(&m, root);
    assert_eq!(entries.len(), 20_000);
    assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(
        get(&m, root, &777u64.to_be_bytes())
            .unwrap()
            .unwrap()
            .into_vec(),
        vec![7u8; 100]
    );
    // Quick-balance keeps leaves nearly full: 115-byte cells, ~35 per page.
    let leaves = m.live();
    assert!(leaves < 20_000 / 33 + 30, "used {leaves} pages");
}

#[test]
fn deleting_everything_frees_all_pages_but_the_root() {
    let mut m = MemPages::new(4096);
    let root = create(&mut m).unwrap();
    for id in 0..5000u64 {
        put(
            &mut m,
            root,
            &id.to_be_bytes(),
            &vec![1u8; (id % 300) as usize],
        )
        .unwrap();
    }
    let mut ids: Vec<u64> = (0..5000).collect();
    let mut rng = Rng(99);
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for id in ids {
        assert!(delete(&mut m, root, &id.to_be_bytes()).unwrap());
        assert!(!delete(&mut m, root, &id.to_be_bytes()).unwrap());
    }
    assert!(scan(&m, root).is_empty());
    assert_eq!(m.live(), 1, "only the root stays allocated");
}

#[test]
fn overflow_values_round_trip_and_free_their_chains() {
    let mut m = MemPages::new(4096);
    let root = create(&mut m).unwrap();
    let sizes = [0usize, 1, 1000, 1017, 5000, 4096 * 3 + 5, 1 << 20];
    for (i, &n) in sizes.iter().enumerate() {
        let v: Vec<u8> = (0..n).map(|j| (j * 31 + i) as u8).collect();
        put(&mut m, root, &(i as u64).to_be_bytes(), &v).unwrap();
    }
    for (i, &n) in sizes.iter().enumerate() {
        let v = get(&m, root, &(i as u64).to_be_bytes()).unwrap().unwrap();
        assert_eq!(v.len(), n);
        assert!(v.iter().enumerate().all(|(j, b)| *b == (j * 31 + i) as u8));
    }
    // Replace a big value with a small one, then delete all: every chain page comes back.
    put(&mut m, root, &6u64.to_be_bytes(), b"small").unwrap();
    assert_eq!(reachable(&m, root).len(), m.live());
    for i in 0..sizes.len() as u64 {
        delete(&mut m, root, &i.to_be_bytes()).unwrap();
    }
    assert_eq!(m.live(), 1);
}

#[test]
fn random_operations_match_a_model() {
    for seed in 1..=6u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut m = MemPages::new(4096);
        let root = create(&mut m).unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for step in 0..6000 {
            let klen = 1 + rng.below(if seed % 2 == 0 { 8 } else { 300 }) as usize;
            let key: Vec<u8> = (0..klen).map(|_| rng.below(4) as u8).collect();
            match rng.below(10) {
                0..=5 => {
                    let vlen = match rng.below(20) {
                        0 => rng.below(20_000) as usize,
                        _ => rng.below(200) as usize,
                    };
                    let val: Vec<u8> = (0..vlen).map(|_| rng.next() as u8).collect();
                    let replaced = put(&mut m, root, &key, &val).unwrap();
                    assert_eq!(
                        replaced,
                        model.insert(key, val).is_some(),
                        "seed {seed} step {step}"
                    );
                }
                _ => {
                    let removed = delete(&mut m, root, &key).unwrap();
                    assert_eq!(
                        removed,
                        model.remove(&key).is_some(),
                        "seed {seed} step {step}"
                    );
                }
            }
            if step % 1000 == 999 {
                let got = scan(&m, root);
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                assert_eq!(got, want, "seed {seed} step {step}");
                let back: Vec<_> = model.keys().rev().cloned().collect();
                assert_eq!(scan_back(&m, root, None), back, "seed {seed} step {step}");
                assert_eq!(
                    reachable(&m, root).len(),
                    m.live(),
                    "leaked pages, seed {seed}"
                );
                for page in reachable(&m, root) {
                    let p = m.page(page).unwrap();
                    if p[0] != PageKind::Overflow as u8 {
                        node::validate(page, &p).unwrap();
                    }
                }
            }
        }
        // Seek lands on the first key >= the probe.
        if let Some(probe) = model.keys().nth(model.len() / 2).cloned() {
            let mut c = Cursor::seek(&m, root, Some(&probe)).unwrap();
            let (page, i) = c.next(&m).unwrap().unwrap();
            assert_eq!(node::key(&page, i), probe.as_slice());
        }
    }
}

#[test]
fn backward_walks_mirror_forward_walks_from_every_bound() {
    let mut m = MemPages::new(4096);
    let root = create(&mut m).unwrap();
    assert!(scan_back(&m, root, None).is_empty());
    assert!(scan_back(&m, root, Some(b"x")).is_empty());
    // Even keys only, so odd probes fall between keys; three levels deep.
    let keys: Vec<Vec<u8>> = (0..30_000u32)
        .map(|i| (i * 2).to_be_bytes().to_vec())
        .collect();
    for k in &keys {
        put(&mut m, root, k, &[9u8; 40]).unwrap();
    }
    assert_eq!(
        scan_back(&m, root, None),
        keys.iter().rev().cloned().collect::<Vec<_>>()
    );
    let mut rng = Rng(5);
    for _ in 0..300 {
        let probe = (rng.below(60_010) as u32).to_be_bytes();
        let want: Vec<_> = keys
            .iter()
            .rev()
            .filter(|k| k.as_slice() < probe.as_slice())
            .cloned()
            .collect();
        assert_eq!(scan_back(&m, root, Some(&probe)), want, "below {probe:?}");
    }
    // Bounds past either end, and a bound shorter than the keys.
    assert_eq!(
        scan_back(&m, root, Some(&[0, 0, 0, 0])),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(scan_back(&m, root, Some(&[0xFF; 5])).len(), keys.len());
    assert_eq!(scan_back(&m, root, Some(&[0, 0, 1])).len(), 128);
}

#[test]
fn oversized_keys_are_rejected() {
    let mut m = MemPages::new(4096);
    let root = create(&mut m).unwrap();
    let key = vec![1u8; node::max_key(4096) + 1];
    assert!(matches!(
        put(&mut m, root, &key, b"v"),
        Err(Error::InvalidArgument(_))
    ));
    let key = vec![1u8; node::max_key(4096)];
    put(&mut m, root, &key, &[2u8; 3000]).unwrap();
}
