//! The sinks as the bench binds them: they count everything, keep only what they are told,
//! and the push receiver decrypts a sample (and every urgent push); watches see markers.

use hejnal::{
    channels::{Address, Message},
    testkit::{
        Keep, Watch,
        push::{PushOptions, PushReceiver},
        smtp::{SmtpOptions, SmtpSink},
    },
};

use crate::channels::{channels, email_settings, email_to, push_settings};

#[tokio::test]
async fn a_sampling_push_receiver_counts_every_push_and_decrypts_one_in_n_and_every_urgent_one() {
    let options = PushOptions { keep: Keep::Last(2), decrypt_one_in: 4, decrypt_urgent: true };
    let receiver = PushReceiver::bind(options).await.unwrap();
    let push = channels(push_settings(true)).push;
    let to = Address::Push(receiver.subscribe());
    let (watch, by_topic) = (Watch::new(b"ALARM-1"), Watch::new(b"topic:notice-7\n"));
    receiver.add_watch(&watch);
    receiver.add_watch(&by_topic);
    for i in 0..8 {
        let mut routine = Message::new(format!("routine-{i}"), "Info", "nothing urgent");
        routine.topic = Some(if i < 5 { "notice-7" } else { "notice-71" }.into());
        push.send(&to, &routine).await.unwrap();
    }
    let mut alarm = Message::new("alarm", "ALARM-1", "Flood");
    alarm.urgent = true;
    push.send(&to, &alarm).await.unwrap();

    assert_eq!((receiver.count(), receiver.decrypted()), (9, 3), "8 routine, 2 of them sampled, and the urgent one");
    assert_eq!(receiver.received().len(), 2, "keeps the last two decrypted");
    assert_eq!(receiver.received().last().unwrap().json()["title"], "ALARM-1");
    assert_eq!(watch.count(), 1);
    assert_eq!(by_topic.count(), 5, "the Topic is seen in every push, decrypted or not");
    assert!(receiver.refused().is_empty());
}

#[tokio::test]
async fn a_counting_smtp_sink_keeps_the_last_message_and_watches_for_a_marker() {
    let sink = SmtpSink::bind(SmtpOptions { keep: Keep::Last(1), offer_pipelining: true }).await.unwrap();
    let email = channels(email_settings(&sink)).email;
    let watch = Watch::new(b"ALARM-2");
    sink.add_watch(&watch);
    for subject in ["one", "ALARM-2", "three"] {
        email.send(&email_to("jan@example.com"), &Message::new(subject, subject, "text")).await.unwrap();
    }
    assert_eq!(sink.count(), 3);
    let kept = sink.received();
    assert_eq!((kept.len(), kept[0].header("Subject").as_deref()), (1, Some("three")));
    assert_eq!(watch.count(), 1);
}
