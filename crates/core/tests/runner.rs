use percept_core::{FnStage, Pipeline, Stage, StageError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn double() -> impl Stage<Input = u64, Output = u64> {
    FnStage::new("double", |x: u64| Ok(x * 2))
}

#[test]
fn many_items_come_out_in_order_with_their_ids() {
    let mut p = Pipeline::new(4);
    let (mut input, rx) = p.input::<u64>();
    let rx = p.add(double(), rx);
    let rx = p.add(FnStage::new("plus1", |x: u64| Ok(x + 1)), rx);
    let feeder = std::thread::spawn(move || {
        for i in 0..10_000u64 {
            assert_eq!(input.send(i).expect("send"), i);
        }
    });
    let out: Vec<_> = rx.iter().collect();
    feeder.join().expect("feeder");
    let report = p.join();
    assert_eq!(out.len(), 10_000);
    for (i, env) in out.iter().enumerate() {
        assert_eq!(env.id, i as u64);
        assert_eq!(env.result.as_ref().copied(), Ok(i as u64 * 2 + 1));
    }
    assert_eq!(report.stages.len(), 2);
    assert!(report
        .stages
        .iter()
        .all(|s| s.items == 10_000 && s.errors == 0));
}

#[test]
fn a_slow_stage_applies_backpressure_and_bounds_the_queues() {
    let capacity = 3;
    let mut p = Pipeline::new(capacity);
    let (mut input, rx) = p.input::<u64>();
    let sent = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let taken_in = taken.clone();
    let slow = FnStage::new("slow", move |x: u64| {
        taken_in.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
        Ok(x)
    });
    let rx = p.add(slow, rx);
    let sent_in = sent.clone();
    let taken_probe = taken.clone();
    let feeder = std::thread::spawn(move || {
        let mut max_ahead = 0;
        for i in 0..60u64 {
            input.send(i).expect("send");
            let s = sent_in.fetch_add(1, Ordering::SeqCst) + 1;
            let ahead = s - taken_probe.load(Ordering::SeqCst);
            max_ahead = max_ahead.max(ahead);
        }
        max_ahead
    });
    // Read slowly too, so the output queue fills and the stage itself blocks.
    let mut n = 0;
    for env in rx.iter() {
        assert!(env.result.is_ok());
        n += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let max_ahead = feeder.join().expect("feeder");
    let report = p.join();
    assert_eq!(n, 60);
    // The producer can be at most one queue plus the item in the stage's hands ahead.
    assert!(
        max_ahead <= capacity + 1,
        "producer ran {max_ahead} items ahead"
    );
    let m = &report.stages[0];
    assert!(
        m.queue_high_water <= capacity,
        "high water {}",
        m.queue_high_water
    );
    assert!(
        m.queue_high_water >= 2,
        "the queue was exercised: {}",
        m.queue_high_water
    );
    assert!(m.busy >= Duration::from_millis(5 * 60));
}

#[test]
fn an_error_on_one_item_is_reported_for_that_item_and_the_rest_complete() {
    let mut p = Pipeline::new(2);
    let (mut input, rx) = p.input::<u64>();
    let picky = FnStage::new("picky", |x: u64| {
        if x == 3 {
            Err(StageError::new("three is not allowed"))
        } else {
            Ok(x)
        }
    });
    let rx = p.add(picky, rx);
    let rx = p.add(double(), rx);
    std::thread::spawn(move || {
        for i in 0..8 {
            input.send(i).expect("send");
        }
    });
    let out: Vec<_> = rx.iter().collect();
    let report = p.join();
    assert_eq!(out.len(), 8);
    let err = out[3].result.as_ref().expect_err("item 3 fails");
    assert_eq!(err.stage, "picky");
    assert_eq!(err.message, "three is not allowed");
    assert!(out
        .iter()
        .enumerate()
        .all(|(i, e)| i == 3 || e.result.is_ok()));
    assert_eq!(report.stages[0].errors, 1);
    // The error passed through the second stage without being processed there.
    assert_eq!(report.stages[1].items, 7);
}

#[test]
fn a_panicking_stage_is_an_error_record_not_a_hang() {
    let mut p = Pipeline::new(2);
    let (mut input, rx) = p.input::<u64>();
    let boom = FnStage::new("boom", |x: u64| {
        if x % 2 == 1 {
            panic!("odd input {x}");
        }
        Ok(x)
    });
    let rx = p.add(boom, rx);
    std::thread::spawn(move || {
        for i in 0..6 {
            input.send(i).expect("send");
        }
    });
    let out: Vec<_> = rx.iter().collect();
    p.join();
    assert_eq!(out.len(), 6);
    let err = out[1].result.as_ref().expect_err("odd panics");
    assert!(err.message.contains("panicked") && err.message.contains("odd input 1"));
    assert!(out[4].result.is_ok());
}

#[test]
fn shutdown_refuses_new_items_but_drains_accepted_ones() {
    let mut p = Pipeline::new(4);
    let shutdown = p.shutdown();
    let (mut input, rx) = p.input::<u64>();
    let slow = FnStage::new("slow", |x: u64| {
        std::thread::sleep(Duration::from_millis(3));
        Ok(x)
    });
    let rx = p.add(slow, rx);
    let feeder = std::thread::spawn(move || {
        let mut accepted = Vec::new();
        for i in 0..1000u64 {
            if i == 10 {
                shutdown.trigger();
            }
            match input.send(i) {
                Ok(id) => accepted.push(id),
                Err(e) => {
                    assert_eq!(e, percept_core::SendError::ShuttingDown);
                    break;
                }
            }
        }
        accepted
    });
    let out: Vec<u64> = rx.iter().map(|e| e.id).collect();
    let accepted = feeder.join().expect("feeder");
    p.join();
    assert_eq!(accepted, (0..10).collect::<Vec<_>>());
    assert_eq!(out, accepted, "every accepted item came out");
}

#[test]
fn errors_sent_at_the_input_come_out_in_place() {
    let mut p = Pipeline::new(2);
    let (mut input, rx) = p.input::<u64>();
    let rx = p.add(double(), rx);
    std::thread::spawn(move || {
        input.send_with_id(0, 1).expect("send");
        let e = percept_core::ItemError {
            stage: "decode".into(),
            message: "bad.wav: not audio".into(),
        };
        input.send_error(1, e).expect("send");
        input.send_with_id(2, 5).expect("send");
    });
    let out: Vec<_> = rx.iter().collect();
    p.join();
    assert_eq!(out[0].result, Ok(2));
    assert_eq!(out[1].result.as_ref().expect_err("err").stage, "decode");
    assert_eq!(out[2].result, Ok(10));
}
