//! Writes a collector batch reply carrying a decision set, as the collector would send it, for
//! trying the filter's enforcement against a stand-in collector without the real one.
//!
//! ```text
//! cargo run -p plumbline-filter --example encode_reply -- --out reply.bin --version 3 \
//!     --mode enforce --salt SALT --ttl-ms 60000 \
//!     --block KEY[:STATUS] --throttle KEY:PER_HOUR[:BURST] --block-prefix ADDR/BITS \
//!     --filler N
//! ```
//!
//! Keys are raw API keys, hashed with `--salt` as the filter does; `--filler N` adds N block
//! decisions on consumers nobody uses (to try large sets). Every option but `--out` and
//! `--version` may be left out or repeated.

use plumbline_wire::{
    consumer_id, Action, Addr, BatchReply, ConsumerId, Decision, DecisionSet, Mode, Subject,
};
use std::error::Error;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Default)]
struct Args {
    out: Option<String>,
    version: u64,
    mode: Mode,
    salt: String,
    ttl_ms: u64,
    decisions: Vec<(Subject, Action)>,
    filler: u32,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse(std::env::args().skip(1).collect())?;
    let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let mut decisions: Vec<Decision> = args
        .decisions
        .iter()
        .zip(1..)
        .map(|(&(subject, action), id)| Decision {
            id,
            subject,
            action,
            expires_at_ms: now_ms + args.ttl_ms,
        })
        .collect();
    decisions.extend((0..args.filler).map(|n| filler(n, now_ms + args.ttl_ms)));
    let set = DecisionSet {
        version: args.version,
        mode: args.mode,
        decisions,
    };
    let count = set.decisions.len();
    let mut reply = BatchReply::new(0, false, args.version);
    reply.decisions = Some(set);
    let bytes = reply.encode();
    let out = args.out.ok_or("--out FILE is required")?;
    std::fs::write(&out, &bytes)?;
    println!(
        "{out}: version {} with {count} decisions, {} bytes, expiring at {}",
        args.version,
        bytes.len(),
        now_ms + args.ttl_ms
    );
    Ok(())
}

fn parse(argv: Vec<String>) -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        ttl_ms: 60_000,
        salt: "plumbline-demo-salt-change-me".into(),
        ..Args::default()
    };
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--out" => args.out = Some(value),
            "--version" => args.version = value.parse()?,
            "--mode" => args.mode = mode(&value)?,
            "--salt" => args.salt = value,
            "--ttl-ms" => args.ttl_ms = value.parse()?,
            "--filler" => args.filler = value.parse()?,
            "--block" => args.decisions.push(block(&args.salt, &value)?),
            "--throttle" => args.decisions.push(throttle(&args.salt, &value)?),
            "--block-prefix" => args.decisions.push(block_prefix(&value)?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(args)
}

fn mode(text: &str) -> Result<Mode, Box<dyn Error>> {
    match text {
        "enforce" => Ok(Mode::Enforce),
        "monitor" => Ok(Mode::Monitor),
        other => Err(format!("mode {other:?} is not enforce or monitor").into()),
    }
}

fn block(salt: &str, spec: &str) -> Result<(Subject, Action), Box<dyn Error>> {
    let (key, status) = match spec.rsplit_once(':') {
        Some((key, status)) => (key, status.parse()?),
        None => (spec, 403),
    };
    let subject = Subject::Consumer(consumer_id(salt.as_bytes(), key.as_bytes()));
    Ok((subject, Action::Block { status }))
}

fn throttle(salt: &str, spec: &str) -> Result<(Subject, Action), Box<dyn Error>> {
    let mut parts = spec.split(':');
    let key = parts.next().ok_or("throttle needs KEY:PER_HOUR")?;
    let per_hour: u32 = parts.next().ok_or("throttle needs a rate")?.parse()?;
    let burst = match parts.next() {
        Some(b) => b.parse()?,
        None => Action::default_burst(per_hour),
    };
    let subject = Subject::Consumer(consumer_id(salt.as_bytes(), key.as_bytes()));
    Ok((subject, Action::Throttle { per_hour, burst }))
}

fn block_prefix(spec: &str) -> Result<(Subject, Action), Box<dyn Error>> {
    let (addr, bits) = spec.split_once('/').ok_or("a prefix is ADDR/BITS")?;
    let addr = Addr::from(addr.parse::<IpAddr>()?);
    let subject = Subject::Prefix {
        addr,
        bits: bits.parse()?,
    };
    Ok((subject, Action::Block { status: 403 }))
}

fn filler(n: u32, expires_at_ms: u64) -> Decision {
    let mut id = [0xee; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    Decision {
        id: 1_000_000 + u64::from(n),
        subject: Subject::Consumer(ConsumerId(id)),
        action: Action::Block { status: 403 },
        expires_at_ms,
    }
}
