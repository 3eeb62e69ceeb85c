//! Idle keep-alive (issue 22, item 15): existing clients never retry a POST on a
//! connection the server closed and expect idle connections to live at least 75 s. That
//! is the server's keep-alive setting: the default is checked, and an idle connection is
//! shown to live exactly as long as the setting says with a setting of two seconds, so
//! that no test idles for 75 s.
use std::time::{Duration, Instant};

use crate::helpers::*;

const SETTING: Duration = Duration::from_secs(2);

#[actix_web::test]
async fn an_idle_connection_lives_as_long_as_the_keep_alive_setting() {
    let default = default_keep_alive();
    assert!(default >= Duration::from_secs(75), "{default:?}");

    let app = TestApp::builder()
        .config(|c| c.keep_alive = SETTING)
        .spawn()
        .await;
    // The connection is spoken by hand on a thread of its own: blocking reads must
    // not stall the runtime this server runs on.
    let addr = app.addr;
    let lived = actix_rt::task::spawn_blocking(move || {
        let mut conn = RawConn::open(addr);
        conn.send("GET", "/health", "localhost", &[], "");
        assert_eq!(conn.answer().0, 200);

        // Idle for half the setting (the idling is what is tested): still open, and it
        // serves the next request.
        std::thread::sleep(SETTING / 2);
        assert!(!conn.is_closed(Duration::from_millis(10)));
        conn.send("GET", "/health", "localhost", &[], "");
        assert_eq!(conn.answer().0, 200);

        // Idle beyond the setting: the server closes it, and not much earlier.
        let idle = Instant::now();
        while !conn.is_closed(Duration::from_millis(100)) {
            assert!(
                idle.elapsed() < SETTING * 10,
                "the idle connection is still open after {:?}",
                idle.elapsed()
            );
        }
        idle.elapsed()
    })
    .await
    .unwrap();
    assert!(lived >= SETTING * 3 / 4, "closed after {lived:?}");
    println!("an idle connection lived {lived:?} with a keep-alive of {SETTING:?}");
}
