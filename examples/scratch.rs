use std::io::BufReader;
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let mut n = 0;
        for c in cdp_warehouse::calls::ndjson::CallReader::new(BufReader::with_capacity(1<<20, std::fs::File::open(&path).unwrap())) {
            let c = c.unwrap();
            n += c.user_id.map_or(0, |s| s.len());
        }
        println!("reader {:?} {n}", t.elapsed());
    }
}
