//! Property: driven by any sequence of events, the lifecycle table never reaches an illegal
//! state. The environment is modelled honestly: a process exists only after a StartProcess
//! effect, an installer only after RunInstall, exits are reported only for something that
//! runs, and follow-ups are applied once the process is gone.

use catalyst_core::lifecycle::{Effect, Event, ServerState, apply};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Step {
    Request(Event),
    ProcessExits { code: Option<i32>, oom: bool },
    InstallerEnds { ok: bool },
    DonePattern,
}

fn request() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Install),
        Just(Event::Start),
        Just(Event::Stop),
        Just(Event::Restart),
        Just(Event::Kill),
        Just(Event::Suspend),
        Just(Event::Unsuspend),
        Just(Event::BeginTransfer),
        Just(Event::TransferFinished),
        Just(Event::BeginRestore),
        Just(Event::RestoreFinished),
        Just(Event::Delete),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => request().prop_map(Step::Request),
        2 => (prop_oneof![Just(Some(0)), Just(Some(1)), Just(None)], any::<bool>())
            .prop_map(|(code, oom)| Step::ProcessExits { code, oom }),
        1 => any::<bool>().prop_map(|ok| Step::InstallerEnds { ok }),
        1 => Just(Step::DonePattern),
    ]
}

#[derive(Debug, Default)]
struct World {
    process: bool,
    installer: bool,
    follow_ups: Vec<Event>,
    busy: bool, // a transfer or restore job is running
}

fn run(state: &mut ServerState, world: &mut World, event: Event) {
    let before = *state;
    let Ok(t) = apply(*state, event) else {
        return;
    };
    for effect in &t.effects {
        match effect {
            Effect::StartProcess => {
                assert!(!world.process, "{before} + {event:?}: start while a process runs");
                assert!(!world.installer, "{before} + {event:?}: start while installing");
                world.process = true;
            }
            Effect::RunInstall => {
                assert!(!world.process && !world.installer, "{before} + {event:?}: install over a live process");
                world.installer = true;
            }
            Effect::RunTransfer | Effect::RunRestore => {
                assert!(!world.process && !world.installer, "{before} + {event:?}: job over a live process");
                world.busy = true;
            }
            Effect::Destroy => assert!(!world.process && !world.installer, "{before}: destroy while running"),
            Effect::FollowUp(f) => world.follow_ups.push(f.event()),
            _ => {}
        }
    }
    *state = t.next;
    // Invariants that must hold after every step.
    if matches!(state, ServerState::Starting | ServerState::Running) {
        assert!(world.process, "{state} without a process");
    }
    if !state.has_process() {
        assert!(!world.process, "{state} with a live process (after {before} + {event:?})");
    }
    if world.installer {
        assert_eq!(*state, ServerState::Installing, "installer runs outside installing");
    }
    if *state == ServerState::Suspended {
        assert!(!world.process && !world.installer && !world.busy, "suspended with something running");
    }
}

fn settle(state: &mut ServerState, world: &mut World) {
    if !world.process && !world.installer {
        for ev in std::mem::take(&mut world.follow_ups) {
            run(state, world, ev);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn no_event_sequence_reaches_an_illegal_state(steps in proptest::collection::vec(step(), 1..60)) {
        let mut state = ServerState::Installing;
        let mut world = World { installer: true, ..Default::default() };
        for s in steps {
            if state == ServerState::Deleting {
                for ev in Event::REPRESENTATIVES {
                    prop_assert!(apply(state, ev).is_err(), "deleting is terminal");
                }
                break;
            }
            match s {
                Step::Request(Event::TransferFinished | Event::RestoreFinished) if !world.busy => continue,
                Step::Request(ev @ (Event::TransferFinished | Event::RestoreFinished)) => {
                    world.busy = false;
                    run(&mut state, &mut world, ev);
                }
                Step::Request(ev) => run(&mut state, &mut world, ev),
                Step::ProcessExits { code, oom } if world.process => {
                    world.process = false;
                    run(&mut state, &mut world, Event::Exited { code, oom });
                }
                Step::InstallerEnds { ok } if world.installer => {
                    world.installer = false;
                    run(&mut state, &mut world, if ok { Event::InstallSucceeded } else { Event::InstallFailed });
                }
                Step::DonePattern if world.process => run(&mut state, &mut world, Event::Started),
                _ => {}
            }
            settle(&mut state, &mut world);
        }
    }
}

#[test]
fn every_state_is_reachable_and_every_state_but_deleting_can_leave() {
    use std::collections::{HashSet, VecDeque};
    let mut seen = HashSet::from([ServerState::Installing]);
    let mut queue = VecDeque::from([ServerState::Installing]);
    while let Some(s) = queue.pop_front() {
        for ev in Event::REPRESENTATIVES {
            if let Ok(t) = apply(s, ev)
                && seen.insert(t.next)
            {
                queue.push_back(t.next);
            }
        }
    }
    assert_eq!(seen.len(), ServerState::ALL.len(), "unreachable states: {seen:?}");
    for s in ServerState::ALL {
        let leaves = Event::REPRESENTATIVES.iter().any(|ev| apply(s, *ev).is_ok_and(|t| t.next != s));
        assert_eq!(leaves, s != ServerState::Deleting, "{s}");
    }
}
