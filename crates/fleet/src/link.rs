//! One Redis connection that reconnects: every call that fails because Redis is away (refused,
//! dropped, timed out, still loading its AOF) waits and tries again, the wait doubling from
//! 100 ms to 5 s, for ever (workers) or up to a patience (the one-shot commands).

use crate::{FleetError, Result};
use redis::{Client, Connection, ErrorKind, RedisError, RedisResult};
use std::time::{Duration, Instant};

const FIRST_WAIT: Duration = Duration::from_millis(100);
const MAX_WAIT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longer than any blocking read a worker asks for.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Link {
    client: Client,
    url: String,
    con: Option<Connection>,
    patience: Option<Duration>,
    /// Times a call had to wait for Redis (for the worker's summary).
    pub(crate) outages: u64,
}

impl Link {
    /// `patience`: how long a call may wait for Redis before it fails (None: for ever).
    pub(crate) fn open(url: &str, patience: Option<Duration>) -> Result<Link> {
        let client = Client::open(url).map_err(|e| FleetError::Redis {
            url: url.to_string(),
            source: e,
        })?;
        Ok(Link {
            client,
            url: url.to_string(),
            con: None,
            patience,
            outages: 0,
        })
    }

    /// Runs `f` on a live connection, reconnecting with backoff while Redis is away. `f` may
    /// run more than once, so it must be safe to repeat.
    pub(crate) fn call<T>(
        &mut self,
        mut f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let mut wait = FIRST_WAIT;
        let mut waited = false;
        loop {
            let result = match self.connection() {
                Ok(con) => f(con),
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) => {
                    self.con = None;
                    if !waited {
                        self.outages += 1;
                        waited = true;
                    }
                    if self.patience.is_some_and(|p| started.elapsed() >= p) {
                        return Err(FleetError::Unreachable {
                            url: self.url.clone(),
                            secs: started.elapsed().as_secs_f64(),
                            last: e.to_string(),
                        });
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(MAX_WAIT);
                }
                Err(e) => {
                    return Err(FleetError::Redis {
                        url: self.url.clone(),
                        source: e,
                    })
                }
            }
        }
    }

    fn connection(&mut self) -> RedisResult<&mut Connection> {
        if self.con.is_none() {
            let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
            con.set_read_timeout(Some(IO_TIMEOUT))?;
            con.set_write_timeout(Some(IO_TIMEOUT))?;
            self.con = Some(con);
        }
        match self.con.as_mut() {
            Some(con) => Ok(con),
            None => Err(RedisError::from((ErrorKind::IoError, "no connection"))),
        }
    }
}

/// Redis is away or not ready yet, rather than the command being wrong.
fn transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(e.kind(), ErrorKind::BusyLoadingError | ErrorKind::TryAgain)
}
