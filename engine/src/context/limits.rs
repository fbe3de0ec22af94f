//! Limits that hold across crashes: loops bounded by a count of iterations and attempts
//! bounded by a count of tries, each counted by markers in the journal.

use std::future::Future;

use super::{Attempt, Ctx};
use crate::error::WfError;
use crate::journal::EntryState;
use crate::model::{Cost, EventData};

impl Ctx {
    /// A loop bounded durably by `max` iterations: each [`Bounded::next`] journals a marker, so
    /// the count survives crashes; the iteration after the last allowed one fails the run with
    /// `LimitExceeded` naming `limit`.
    pub fn bounded(&self, limit: impl Into<String>, max: u32) -> Bounded {
        Bounded {
            ctx: self.clone(),
            limit: limit.into(),
            max,
            n: 0,
        }
    }

    /// Run `f` until it returns [`Attempt::Done`], at most `max` times. Each attempt journals a
    /// marker first, so the count survives crashes; when all are spent the run fails with
    /// `LimitExceeded` naming `limit` and the last rejection. Name the steps inside `f` with
    /// the attempt number it receives.
    pub async fn attempts<T, F, Fut>(
        &self,
        limit: impl Into<String>,
        max: u32,
        mut f: F,
    ) -> Result<T, WfError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, WfError>>,
    {
        let limit = limit.into();
        let mut last = None;
        for n in 1.. {
            match self.marker(&limit, n, max).await {
                Ok(()) => {}
                Err(WfError::LimitExceeded { limit, max, .. }) => {
                    return Err(WfError::LimitExceeded { limit, max, last });
                }
                Err(e) => return Err(e),
            }
            match f(n).await? {
                Attempt::Done(v) => return Ok(v),
                Attempt::Retry(reason) => last = Some(reason),
            }
        }
        unreachable!("the marker stops the loop at max + 1")
    }

    async fn marker(&self, limit: &str, n: u32, max: u32) -> Result<(), WfError> {
        let name = format!("{limit}#{n}");
        self.claim_name(&name)?;
        self.check_live()?;
        match self.entry_state(&name) {
            Some(EntryState::Marker) => Ok(()),
            Some(EntryState::LimitExceeded { max }) => Err(WfError::LimitExceeded {
                limit: limit.to_string(),
                max,
                last: None,
            }),
            None if n > max => {
                self.fresh(&name, "a limit marker").await?;
                self.commit(
                    &name,
                    vec![EventData::LimitExceeded {
                        limit: limit.to_string(),
                        max,
                    }],
                    Cost::default(),
                    None,
                )
                .await?;
                Err(WfError::LimitExceeded {
                    limit: limit.to_string(),
                    max,
                    last: None,
                })
            }
            None => {
                self.fresh(&name, "a limit marker").await?;
                self.commit(
                    &name,
                    vec![EventData::Marker {
                        limit: limit.to_string(),
                        n,
                    }],
                    Cost::default(),
                    None,
                )
                .await
            }
            Some(other) => Err(self.nondeterminism(&name, &other, "a limit marker")),
        }
    }
}

/// A durable loop bound (see [`Ctx::bounded`]).
#[derive(Debug)]
pub struct Bounded {
    ctx: Ctx,
    limit: String,
    max: u32,
    n: u32,
}

impl Bounded {
    /// Begin the next iteration; returns its 1-based number.
    pub async fn next(&mut self) -> Result<u32, WfError> {
        self.n += 1;
        self.ctx.marker(&self.limit, self.n, self.max).await?;
        Ok(self.n)
    }
    /// Iterations begun so far.
    pub fn count(&self) -> u32 {
        self.n
    }
}
