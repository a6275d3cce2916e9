//! Behaviour of the inventory as a whole: templating, learned parameters, merges, restore.

use super::endpoint::Hit;
use super::tree::Rules;
use super::*;

fn inventory() -> Inventory {
    Inventory::new(Rules::default(), 100)
}

fn observe(inv: &mut Inventory, method: &str, path: &str, consumer: Option<u32>) -> Counted {
    let request = Request {
        host: "api.example.com",
        method,
        raw_path: !path.starts_with('/'),
        hit: Hit {
            status: 200,
            weight: 1,
            time_ms: 1_000,
            consumer,
        },
    };
    let segments: Vec<&str> = match path.strip_prefix('/') {
        Some("") => vec![],
        Some(rest) => rest.split('/').collect(),
        None => vec![path],
    };
    inv.observe(request, segments.into_iter()).unwrap()
}

fn paths(inv: &Inventory) -> Vec<String> {
    let mut out: Vec<String> = inv
        .endpoints()
        .iter()
        .map(|(_, e)| format!("{} {}", e.method, e.path))
        .collect();
    out.sort();
    out
}

/// A small deterministic generator so traffic tests are repeatable.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn typed_segments_become_placeholders() {
    let mut inv = inventory();
    observe(&mut inv, "GET", "/users/42", None);
    observe(&mut inv, "GET", "/users/43", None);
    observe(
        &mut inv,
        "GET",
        "/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        None,
    );
    observe(&mut inv, "GET", "/commits/a94a8fe5cc", None);
    observe(&mut inv, "GET", "/reports/2024-01-31", None);
    observe(&mut inv, "GET", "/people/jane@example.com", None);
    observe(
        &mut inv,
        "GET",
        "/sessions/sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        None,
    );
    assert_eq!(
        paths(&inv),
        [
            "GET /commits/{hex}",
            "GET /orders/{uuid}",
            "GET /people/{email}",
            "GET /reports/{date}",
            "GET /sessions/{token}",
            "GET /users/{id}",
        ]
    );
}

#[test]
fn the_root_and_trailing_slashes_are_their_own_endpoints() {
    let mut inv = inventory();
    observe(&mut inv, "GET", "/", None);
    observe(&mut inv, "GET", "/a/", None);
    observe(&mut inv, "OPTIONS", "*", None);
    assert_eq!(paths(&inv), ["GET /", "GET /a/", "OPTIONS *"]);
}

#[test]
fn small_word_sets_stay_literal() {
    let mut inv = inventory();
    let words = ["users", "orders", "invoices", "products", "carts", "search"];
    for round in 0..50 {
        for word in words {
            observe(&mut inv, "GET", &format!("/v1/{word}"), Some(round % 7));
        }
    }
    assert_eq!(inv.endpoints().len(), words.len());
    assert!(paths(&inv).contains(&"GET /v1/carts".to_string()));
}

#[test]
fn many_names_at_one_position_collapse_into_a_parameter_and_merge() {
    let mut inv = inventory();
    for i in 0..30u32 {
        observe(
            &mut inv,
            "GET",
            &format!("/files/report-{}", word(i)),
            Some(i % 3),
        );
        observe(
            &mut inv,
            "DELETE",
            &format!("/files/report-{}", word(i)),
            None,
        );
    }
    assert_eq!(paths(&inv), ["DELETE /files/{file}", "GET /files/{file}"]);
    let get = inv
        .endpoints()
        .iter()
        .find(|(_, e)| &*e.method == "GET")
        .unwrap()
        .1;
    assert_eq!(get.calls, 30);
    assert_eq!(get.consumers.len(), 3);
}

#[test]
fn merging_endpoints_reports_consumers_that_used_several() {
    let mut inv = inventory();
    for i in 0..25u32 {
        observe(&mut inv, "GET", &format!("/tags/{}", word(i)), Some(0));
    }
    // The 20th name triggers the merge: consumer 0 had used 19 endpoints, now one.
    let lost = inv.take_lost();
    assert_eq!(lost.iter().filter(|c| **c == 0).count(), 18);
}

/// Letters only, so the value is a name, not a typed placeholder.
fn word(i: u32) -> String {
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    let a = letters[(i % 26) as usize] as char;
    let b = letters[((i / 26 + i * 7) % 26) as usize] as char;
    format!("{a}{b}name")
}

#[test]
fn github_owner_repo_paths_come_out_templated_with_subresources_literal() {
    let owners: Vec<String> = (0..30).map(|i| format!("{}-org", word(i))).collect();
    let subresources = [
        "issues",
        "pulls",
        "commits",
        "branches",
        "releases",
        "tags",
        "contributors",
        "languages",
        "stargazers",
        "forks",
        "hooks",
        "labels",
        "milestones",
        "deployments",
        "collaborators",
        "subscribers",
        "topics",
        "teams",
        "events",
        "actions",
        "environments",
        "readme",
        "license",
        "traffic",
        "stats",
        "pages",
        "projects",
    ];
    let mut inv = inventory();
    let mut rng = Lcg(7);
    for _ in 0..20_000 {
        let o = rng.below(owners.len());
        let repo = format!("{}-{}", ["api", "web", "cli"][o % 3], word(o as u32 + 3));
        let sub = subresources[rng.below(subresources.len())];
        let tail = if sub == "issues" {
            format!("/{}", rng.below(5000))
        } else {
            String::new()
        };
        let path = format!("/repos/{}/{repo}/{sub}{tail}", owners[o]);
        observe(&mut inv, "GET", &path, Some(rng.below(10) as u32));
    }
    let all = paths(&inv);
    assert_eq!(all.len(), subresources.len(), "{all:#?}");
    assert!(all.contains(&"GET /repos/{owner}/{repo}/issues/{id}".to_string()));
    assert!(all.contains(&"GET /repos/{owner}/{repo}/stargazers".to_string()));
    let calls: u64 = inv.endpoints().iter().map(|(_, e)| e.calls).sum();
    assert_eq!(calls, 20_000);
}

#[test]
fn the_same_traffic_gives_the_same_endpoint_ids_whatever_the_hash_seeds() {
    // Before, merges followed the randomly seeded order of a map, so which endpoint survived a
    // merge (and so its id, and the alerts a replay raised) changed from run to run.
    let ids = || {
        let mut inv = inventory();
        let mut rng = Lcg(11);
        for _ in 0..3_000 {
            let owner = word(rng.below(60) as u32);
            let sub = ["issues", "pulls", "labels", "hooks"][rng.below(4)];
            let path = format!("/repos/{owner}-org/{}/{sub}", word(rng.below(40) as u32));
            observe(&mut inv, "GET", &path, Some(rng.below(5) as u32));
        }
        let mut ids: Vec<(String, EndpointIdx)> = inv
            .endpoints()
            .iter()
            .map(|(idx, e)| (e.path.to_string(), idx))
            .collect();
        ids.sort();
        ids
    };
    let first = ids();
    assert_eq!(first.len(), 4, "{first:?}");
    for _ in 0..8 {
        assert_eq!(ids(), first);
    }
}

#[test]
fn raw_values_of_replaced_segments_are_not_kept_in_endpoints() {
    let mut inv = inventory();
    for i in 0..40u32 {
        observe(
            &mut inv,
            "GET",
            &format!("/users/{}/profile", word(i)),
            None,
        );
    }
    for (_, endpoint) in inv.endpoints().iter() {
        assert!(!endpoint.path.contains("name"), "{}", endpoint.path);
    }
    assert_eq!(paths(&inv), ["GET /users/{user}/profile"]);
}

#[test]
fn reused_words_below_parameters_stay_literal_after_a_restore() {
    let mut inv = inventory();
    let words: Vec<String> = (0..25u32).map(|i| format!("sub{}", word(i))).collect();
    let mut rng = Lcg(3);
    for n in 0..3000 {
        let owner = format!("{}-org", word(n % 40));
        let path = format!("/repos/{owner}/x{}/{}", word(n % 37), words[rng.below(25)]);
        observe(&mut inv, "GET", &path, None);
    }
    assert_eq!(inv.endpoints().len(), 25, "{:?}", paths(&inv));
    let mut again = inventory();
    for (idx, endpoint) in inv.endpoints().iter() {
        again.restore(idx, endpoint.clone());
    }
    again.finish_restore();
    observe(
        &mut again,
        "GET",
        "/repos/someone/something/brandnewword",
        None,
    );
    assert_eq!(again.endpoints().len(), 26, "{:?}", paths(&again));
}

#[test]
fn restored_endpoints_keep_their_templates_and_learned_parameters() {
    let mut inv = inventory();
    for i in 0..25u32 {
        observe(&mut inv, "GET", &format!("/users/{}", word(i)), None);
    }
    observe(&mut inv, "POST", "/users/7/keys", None);
    let mut again = inventory();
    for (idx, endpoint) in inv.endpoints().iter() {
        again.restore(idx, endpoint.clone());
    }
    assert_eq!(paths(&again), paths(&inv));
    let before = again.endpoints().len();
    observe(&mut again, "GET", "/users/somebody-new", None);
    assert_eq!(again.endpoints().len(), before, "{:?}", paths(&again));
}

#[test]
fn names_drawn_independently_from_large_pools_become_parameters() {
    // Like the demo: each name position cycles through its own pool, owners and repositories
    // are paired at random, and each position holds at most a handful of literal words.
    let owners: Vec<String> = (0..120u32).map(|i| format!("{}-dev", word(i))).collect();
    let repos: Vec<String> = (0..300u32).map(|i| format!("swift-{}", word(i))).collect();
    let teams: Vec<String> = (0..75u32).map(|i| format!("{}-core", word(i))).collect();
    let templates = [
        "/repos/{owner}/{repo}",
        "/repos/{owner}/{repo}/issues/{id}",
        "/repos/{owner}/{repo}/commits/{hex}",
        "/repos/{owner}/{repo}/stargazers",
        "/repos/{owner}/{repo}/branches/{branch}",
        "/users/{owner}",
        "/orgs/{owner}/teams/{team}",
    ];
    let mut inv = inventory();
    let mut rng = Lcg(11);
    let mut cursor = [0usize; 4];
    let mut next = |pool: &[String], slot: usize| {
        cursor[slot] += 1;
        pool[(cursor[slot] * 7919) % pool.len()].clone()
    };
    for n in 0..3000 {
        let template = templates[n % templates.len()];
        let path = template
            .replace("{owner}", &next(&owners, 0))
            .replace("{repo}", &next(&repos, 1))
            .replace("{branch}", &next(&repos, 2))
            .replace("{team}", &next(&teams, 3))
            .replace("{id}", &rng.below(90_000).to_string())
            .replace("{hex}", &format!("{:x}a9f00d1", rng.below(1 << 30)));
        observe(&mut inv, "GET", &path, Some(rng.below(25) as u32));
    }
    assert_eq!(
        paths(&inv),
        [
            "GET /orgs/{org}/teams/{team}",
            "GET /repos/{owner}/{repo}",
            "GET /repos/{owner}/{repo}/branches/{branch}",
            "GET /repos/{owner}/{repo}/commits/{hex}",
            "GET /repos/{owner}/{repo}/issues/{id}",
            "GET /repos/{owner}/{repo}/stargazers",
            "GET /users/{user}",
        ]
    );
}
