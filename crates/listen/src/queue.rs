//! The bounded queue between the endpointer and the models.
//!
//! Only whole utterances travel through it, so when the models fall behind the policy can
//! only ever drop whole utterances, never part of one.

use crate::vad::Utterance;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

/// What to do with a closed utterance when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the oldest waiting utterance: the newest is what the speaker waits on.
    DropOldest,
    /// Wait for room (a file read faster than real time has nobody waiting on it).
    Block,
}

/// What happened to a pushed utterance.
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed {
    Queued,
    /// This utterance was dropped (whole) to make room.
    Dropped {
        index: u64,
        start_s: f64,
        end_s: f64,
    },
    /// The consumer is gone.
    Closed,
}

pub struct UtteranceQueue {
    tx: Sender<Utterance>,
    // A receiver of our own so the oldest item can be evicted from the sending side.
    evict: Receiver<Utterance>,
    policy: Overflow,
}

/// A queue of at most `capacity` utterances and the consumer's end.
pub fn utterance_queue(capacity: usize, policy: Overflow) -> (UtteranceQueue, Receiver<Utterance>) {
    let (tx, rx) = bounded(capacity.max(1));
    let q = UtteranceQueue {
        tx,
        evict: rx.clone(),
        policy,
    };
    (q, rx)
}

impl UtteranceQueue {
    /// Never blocks with [`Overflow::DropOldest`]; may report one dropped utterance.
    pub fn push(&self, u: Utterance) -> Pushed {
        match self.policy {
            Overflow::Block => match self.tx.send(u) {
                Ok(()) => Pushed::Queued,
                Err(_) => Pushed::Closed,
            },
            Overflow::DropOldest => {
                let mut item = u;
                let mut dropped = None;
                loop {
                    match self.tx.try_send(item) {
                        Ok(()) => break,
                        Err(TrySendError::Disconnected(_)) => return Pushed::Closed,
                        Err(TrySendError::Full(back)) => {
                            item = back;
                            match self.evict.try_recv() {
                                Ok(old) => dropped = Some(old),
                                // The consumer took one meanwhile: room now.
                                Err(_) => continue,
                            }
                        }
                    }
                }
                match dropped {
                    // A tentative copy is only a head start; losing it loses no speech.
                    Some(d) if d.tentative => Pushed::Queued,
                    Some(d) => Pushed::Dropped {
                        index: d.index,
                        start_s: d.start_s,
                        end_s: d.end_s,
                    },
                    None => Pushed::Queued,
                }
            }
        }
    }

    /// Queues `u` only if nothing is waiting (a tentative utterance must never push out a
    /// real one, nor wait).
    pub fn offer(&self, u: Utterance) -> bool {
        self.tx.is_empty() && self.tx.try_send(u).is_ok()
    }

    /// Utterances waiting.
    pub fn len(&self) -> usize {
        self.tx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utt(index: u64, n: usize) -> Utterance {
        Utterance {
            index,
            start_s: index as f64,
            end_s: index as f64 + 0.5,
            decided_s: index as f64 + 1.0,
            cut: false,
            tentative: false,
            samples: vec![index as f32; n],
            end_at: None,
            closed_at: None,
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_whole_utterance_and_never_blocks() {
        let (q, rx) = utterance_queue(2, Overflow::DropOldest);
        assert_eq!(q.push(utt(0, 100)), Pushed::Queued);
        assert_eq!(q.push(utt(1, 200)), Pushed::Queued);
        match q.push(utt(2, 300)) {
            Pushed::Dropped { index, .. } => assert_eq!(index, 0),
            other => panic!("expected a drop, got {other:?}"),
        }
        assert!(matches!(
            q.push(utt(3, 400)),
            Pushed::Dropped { index: 1, .. }
        ));
        drop(q);
        let left: Vec<Utterance> = rx.iter().collect();
        // The survivors arrive whole, in order.
        assert_eq!(left.iter().map(|u| u.index).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(left[0].samples, vec![2.0; 300]);
        assert_eq!(left[1].samples, vec![3.0; 400]);
    }

    #[test]
    fn a_slow_consumer_loses_whole_utterances_only() {
        let (q, rx) = utterance_queue(1, Overflow::DropOldest);
        let consumer = std::thread::spawn(move || {
            let mut got = Vec::new();
            for u in rx {
                std::thread::sleep(std::time::Duration::from_millis(3));
                got.push(u);
            }
            got
        });
        let mut dropped = 0;
        for i in 0..50 {
            if let Pushed::Dropped { .. } = q.push(utt(i, 10 + i as usize)) {
                dropped += 1;
            }
        }
        drop(q);
        let got = consumer.join().unwrap();
        assert!(dropped > 0);
        assert_eq!(got.len() + dropped, 50);
        for u in &got {
            assert_eq!(u.samples.len(), 10 + u.index as usize);
            assert!(u.samples.iter().all(|&s| s == u.index as f32));
        }
        assert!(got.windows(2).all(|w| w[0].index < w[1].index));
    }

    #[test]
    fn an_offer_only_fills_an_empty_queue() {
        let (q, rx) = utterance_queue(2, Overflow::DropOldest);
        assert!(q.offer(utt(0, 1)));
        assert!(!q.offer(utt(1, 1)));
        assert_eq!(q.push(utt(2, 1)), Pushed::Queued);
        drop(q);
        assert_eq!(rx.iter().map(|u| u.index).collect::<Vec<_>>(), [0, 2]);
    }

    #[test]
    fn evicting_a_tentative_copy_is_not_a_drop() {
        let (q, rx) = utterance_queue(1, Overflow::DropOldest);
        let mut t = utt(0, 3);
        t.tentative = true;
        assert!(q.offer(t));
        assert_eq!(q.push(utt(0, 5)), Pushed::Queued);
        drop(q);
        let left: Vec<Utterance> = rx.iter().collect();
        assert_eq!(left.len(), 1);
        assert!(!left[0].tentative);
    }

    #[test]
    fn block_policy_keeps_everything() {
        let (q, rx) = utterance_queue(1, Overflow::Block);
        let consumer = std::thread::spawn(move || rx.iter().count());
        for i in 0..20 {
            assert_eq!(q.push(utt(i, 5)), Pushed::Queued);
        }
        drop(q);
        assert_eq!(consumer.join().unwrap(), 20);
    }

    #[test]
    fn without_a_consumer_a_full_queue_still_never_blocks() {
        let (q, rx) = utterance_queue(1, Overflow::DropOldest);
        drop(rx);
        // Our own eviction receiver keeps the channel open; a full queue still never blocks.
        assert_eq!(q.push(utt(0, 1)), Pushed::Queued);
        assert!(matches!(
            q.push(utt(1, 1)),
            Pushed::Dropped { index: 0, .. }
        ));
    }
}
