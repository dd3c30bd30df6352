//! CustomerService as a client team sees it: a real tonic server on an
//! ephemeral port over a temporary SledStore, driven by the generated client.
//! Every RPC is covered for its happy path, a retried command id, each
//! invalid field, each rule it enforces and an unknown customer.

use kizuna_customer::CustomerConfig;
use kizuna_domain::customer::{CustomerEvent, STREAM_CATEGORY, stream_name};
use kizuna_domain::{DomainEvent, Upcasters};
use kizuna_eventlog::{Direction, EventFilter, ManualClock, Timestamp};
use kizuna_proto::v1 as pb;
use kizuna_proto::v1::customer_service_client::CustomerServiceClient;
use kizuna_tests::TestServer;
use kizuna_tests::status::{assert_invalid, assert_rejected};
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

// ---------------------------------------------------------------- server --

/// 2026-01-01T00:00:00Z.
const START_NANOS: i64 = 1_767_225_600_000_000_000;

async fn start_server(clock: ManualClock) -> TestServer {
    kizuna_tests::serve_on_temp_log(clock, |runner| {
        tonic::transport::Server::builder().add_service(kizuna_customer::service(
            runner,
            CustomerConfig {
                default_region: "JP".parse().expect("JP"),
            },
        ))
    })
    .await
}

struct Fixture {
    server: TestServer,
    client: CustomerServiceClient<Channel>,
    clock: ManualClock,
}

async fn fixture() -> Fixture {
    let clock = ManualClock::new(Timestamp::from_unix_nanos(START_NANOS));
    let server = start_server(clock.clone()).await;
    let client = CustomerServiceClient::connect(server.endpoint.clone())
        .await
        .expect("connect");
    Fixture {
        server,
        client,
        clock,
    }
}

impl Fixture {
    async fn head(&self) -> u64 {
        self.server.head().await
    }

    /// Registers a customer with the usual contact data; returns its id.
    async fn customer(&mut self) -> Uuid {
        let id = Uuid::now_v7();
        self.client
            .register_customer(pb::RegisterCustomerRequest {
                command: command(),
                customer_id: id.to_string(),
                contact: Some(taro()),
                ..Default::default()
            })
            .await
            .expect("register");
        id
    }

    async fn get(&mut self, id: Uuid) -> pb::GetCustomerResponse {
        self.client
            .get_customer(pb::GetCustomerRequest {
                customer_id: id.to_string(),
            })
            .await
            .expect("get")
            .into_inner()
    }

    async fn events_of(&self, id: Uuid) -> Vec<kizuna_eventlog::RecordedEvent> {
        self.server
            .store
            .read_stream(&stream_name(id), Direction::Forward, None, 1000)
            .await
            .expect("read")
            .events
    }

    async fn merge(&mut self, source: Uuid, target: Uuid) -> pb::MergeCustomersResponse {
        self.client
            .merge_customers(pb::MergeCustomersRequest {
                command: command(),
                source_customer_id: source.to_string(),
                target_customer_id: target.to_string(),
            })
            .await
            .expect("merge")
            .into_inner()
    }
}

// --------------------------------------------------------------- helpers --

/// Metadata with a fresh command id.
fn command() -> Option<pb::CommandMetadata> {
    Some(pb::CommandMetadata {
        command_id: Uuid::now_v7().to_string(),
        actor: "user:alice".into(),
        ..Default::default()
    })
}

fn taro() -> pb::ContactData {
    pb::ContactData {
        given_name: "Taro".into(),
        family_name: "Yamada".into(),
        email: "taro@example.jp".into(),
        phone: "+819012345678".into(),
        postal_address: Some(pb::PostalAddress {
            lines: vec!["1-2-3 丸の内".into()],
            locality: "千代田区".into(),
            region: "東京都".into(),
            postal_code: "100-0005".into(),
            country: "JP".into(),
        }),
        company: String::new(),
    }
}

#[track_caller]
fn assert_not_found(status: &Status, id: Uuid) {
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains(&id.to_string()), "{status:?}");
}

/// The command result's single stream.
#[track_caller]
fn only_stream(result: &Option<pb::CommandResult>) -> &pb::AppendedStream {
    let result = result.as_ref().expect("result");
    assert_eq!(result.streams.len(), 1, "{result:?}");
    &result.streams[0]
}

/// Sends the same request twice (same command id): the second answer is the
/// first one's positions with `replayed`, and the log does not grow.
macro_rules! assert_replays {
    ($fx:expr, $method:ident, $request:expr) => {{
        let request = $request;
        let first = $fx
            .client
            .$method(request.clone())
            .await
            .expect("first")
            .into_inner();
        let head = $fx.head().await;
        $fx.clock.advance(std::time::Duration::from_secs(60));
        let again = $fx
            .client
            .$method(request)
            .await
            .expect("again")
            .into_inner();
        let (r1, r2) = (
            first.result.clone().expect("result"),
            again.result.clone().expect("result"),
        );
        assert!(!r1.replayed, "{r1:?}");
        assert!(!r1.streams.is_empty(), "{r1:?}");
        assert!(r2.replayed, "{r2:?}");
        assert_eq!(r1.streams, r2.streams);
        assert_eq!(r1.event_types, r2.event_types);
        assert_eq!($fx.head().await, head, "a replay appended");
        (first, again)
    }};
}

// --------------------------------------------------------------- register --

#[tokio::test]
async fn register_customer_without_an_id_creates_one_and_tags_the_event() {
    let mut fx = fixture().await;
    let reply = fx
        .client
        .register_customer(pb::RegisterCustomerRequest {
            command: command(),
            contact: Some(taro()),
            consents: vec![pb::ConsentGrant {
                channel: pb::ContactChannel::Email as i32,
                purpose: pb::ConsentPurpose::Marketing as i32,
            }],
            source: "web".into(),
            ..Default::default()
        })
        .await
        .expect("register")
        .into_inner();
    let id = Uuid::try_parse(&reply.customer_id).expect("uuid");
    let stream = only_stream(&reply.result);
    assert_eq!(stream.stream, format!("{STREAM_CATEGORY}-{id}"));
    assert_eq!(
        reply.result.as_ref().expect("result").event_types,
        ["customer.registered"]
    );

    let tagged = fx
        .server
        .store
        .read_all(
            0,
            &EventFilter {
                customer_id: Some(id),
                ..Default::default()
            },
            10,
        )
        .await
        .expect("read_all");
    assert_eq!(tagged.events.len(), 1);

    let got = fx.get(id).await;
    let customer = got.customer.expect("customer");
    assert_eq!(got.version, 0);
    assert_eq!(customer.customer_id, id.to_string());
    assert_eq!(customer.contact, Some(taro()));
    assert_eq!(customer.source, "web");
    assert_eq!(customer.consents.len(), 1);
}

#[tokio::test]
async fn register_customer_retried_replays_with_and_without_a_chosen_id() {
    let mut fx = fixture().await;
    let (first, again) = assert_replays!(
        fx,
        register_customer,
        pb::RegisterCustomerRequest {
            command: command(),
            contact: Some(taro()),
            ..Default::default()
        }
    );
    assert_eq!(first.customer_id, again.customer_id);
    assert_replays!(
        fx,
        register_customer,
        pb::RegisterCustomerRequest {
            command: command(),
            customer_id: Uuid::now_v7().to_string(),
            contact: Some(taro()),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn register_customer_stores_full_width_japanese_input_normalised() {
    let mut fx = fixture().await;
    let reply = fx
        .client
        .register_customer(pb::RegisterCustomerRequest {
            command: command(),
            contact: Some(pb::ContactData {
                given_name: "ﾀﾛｳ".into(),
                family_name: "山田".into(),
                email: "ｔａｒｏ＠ＥＸＡＭＰＬＥ．ＪＰ".into(),
                phone: "０９０－１２３４－５６７８".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("register")
        .into_inner();
    let id = Uuid::try_parse(&reply.customer_id).expect("uuid");
    let contact = fx
        .get(id)
        .await
        .customer
        .expect("customer")
        .contact
        .expect("contact");
    assert_eq!(contact.email, "taro@example.jp");
    assert_eq!(contact.phone, "+819012345678");
    assert_eq!(contact.given_name, "タロウ");

    // And that is what the log itself holds, not just what Get shows.
    let stored = &fx.events_of(id).await[0];
    let event = CustomerEvent::decode(
        &stored.event_type,
        stored.schema_version,
        &stored.payload,
        &Upcasters::new(),
    )
    .expect("decode")
    .expect("known");
    let CustomerEvent::Registered(e) = event else {
        panic!("{event:?}")
    };
    let contact = e.contact.expect("contact");
    assert_eq!(
        (contact.email.as_str(), contact.phone.as_str()),
        ("taro@example.jp", "+819012345678")
    );
}

#[tokio::test]
async fn register_customer_names_each_invalid_field() {
    let mut fx = fixture().await;
    let ok = pb::RegisterCustomerRequest {
        command: command(),
        contact: Some(taro()),
        ..Default::default()
    };
    let cases: Vec<(pb::RegisterCustomerRequest, &str)> = vec![
        (
            pb::RegisterCustomerRequest {
                command: None,
                ..ok.clone()
            },
            "command",
        ),
        (
            pb::RegisterCustomerRequest {
                command: Some(pb::CommandMetadata {
                    command_id: "not-a-uuid".into(),
                    ..Default::default()
                }),
                ..ok.clone()
            },
            "command.command_id",
        ),
        (
            pb::RegisterCustomerRequest {
                customer_id: "nope".into(),
                ..ok.clone()
            },
            "customer_id",
        ),
        (
            pb::RegisterCustomerRequest {
                contact: None,
                ..ok.clone()
            },
            "contact",
        ),
        (
            pb::RegisterCustomerRequest {
                contact: Some(pb::ContactData {
                    email: "taro@".into(),
                    ..taro()
                }),
                ..ok.clone()
            },
            "contact.email",
        ),
        (
            pb::RegisterCustomerRequest {
                contact: Some(pb::ContactData {
                    phone: "090-1234-567".into(),
                    ..taro()
                }),
                ..ok.clone()
            },
            "contact.phone",
        ),
        (
            pb::RegisterCustomerRequest {
                consents: vec![pb::ConsentGrant {
                    channel: pb::ContactChannel::Unspecified as i32,
                    purpose: pb::ConsentPurpose::Service as i32,
                }],
                ..ok.clone()
            },
            "consents[0].channel",
        ),
        (
            pb::RegisterCustomerRequest {
                source: "s".repeat(201),
                ..ok.clone()
            },
            "source",
        ),
    ];
    for (request, field) in cases {
        let status = fx.client.register_customer(request).await.expect_err(field);
        assert_invalid(&status, field);
    }
    assert_eq!(fx.head().await, 0);
}

#[tokio::test]
async fn register_customer_with_a_taken_id_already_exists() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let status = fx
        .client
        .register_customer(pb::RegisterCustomerRequest {
            command: command(),
            customer_id: id.to_string(),
            contact: Some(taro()),
            ..Default::default()
        })
        .await
        .expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
}

// ---------------------------------------------------------- update contact --

fn update(id: Uuid, contact: pb::ContactData) -> pb::UpdateCustomerContactRequest {
    pb::UpdateCustomerContactRequest {
        command: command(),
        customer_id: id.to_string(),
        contact: Some(contact),
        update_mask: None,
    }
}

#[tokio::test]
async fn update_customer_contact_records_changes_and_nothing_for_no_change() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let reply = fx
        .client
        .update_customer_contact(pb::UpdateCustomerContactRequest {
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["email".into()],
            }),
            ..update(
                id,
                pb::ContactData {
                    email: "Ｈａｎａｋｏ@Example.jp".into(),
                    ..Default::default()
                },
            )
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(only_stream(&reply.result).last_version, 1);
    let got = fx.get(id).await;
    let contact = got.customer.expect("customer").contact.expect("contact");
    assert_eq!(contact.email, "hanako@example.jp");
    assert_eq!(contact.family_name, "Yamada", "outside the mask: kept");
    assert_eq!(got.version, 1);

    // The same values in another spelling change nothing and append nothing.
    let head = fx.head().await;
    let reply = fx
        .client
        .update_customer_contact(update(
            id,
            pb::ContactData {
                email: "HANAKO@example.jp".into(),
                phone: "090-1234-5678".into(),
                ..taro()
            },
        ))
        .await
        .expect("no-op")
        .into_inner();
    let result = reply.result.expect("result");
    assert!(result.streams.is_empty() && !result.replayed, "{result:?}");
    assert_eq!(fx.head().await, head);
}

#[tokio::test]
async fn update_customer_contact_retried_replays() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    assert_replays!(
        fx,
        update_customer_contact,
        update(
            id,
            pb::ContactData {
                email: "new@example.jp".into(),
                ..taro()
            }
        )
    );
}

#[tokio::test]
async fn update_customer_contact_names_each_invalid_field() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let cases = vec![
        (
            pb::UpdateCustomerContactRequest {
                customer_id: String::new(),
                ..update(id, taro())
            },
            "customer_id",
        ),
        (
            update(
                id,
                pb::ContactData {
                    phone: "call me".into(),
                    ..taro()
                },
            ),
            "contact.phone",
        ),
        (
            update(
                id,
                pb::ContactData {
                    postal_address: Some(pb::PostalAddress {
                        lines: vec!["x".repeat(201)],
                        ..Default::default()
                    }),
                    ..taro()
                },
            ),
            "contact.postal_address.lines[0]",
        ),
        (
            pb::UpdateCustomerContactRequest {
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".into(), "nickname".into()],
                }),
                ..update(id, taro())
            },
            "update_mask.paths[1]",
        ),
    ];
    let head = fx.head().await;
    for (request, field) in cases {
        let status = fx
            .client
            .update_customer_contact(request)
            .await
            .expect_err(field);
        assert_invalid(&status, field);
    }
    assert_eq!(fx.head().await, head);
}

#[tokio::test]
async fn update_customer_contact_of_an_unknown_customer_is_not_found() {
    let mut fx = fixture().await;
    let unknown = Uuid::now_v7();
    let status = fx
        .client
        .update_customer_contact(update(unknown, taro()))
        .await
        .expect_err("unknown");
    assert_not_found(&status, unknown);
}

#[tokio::test]
async fn a_changed_email_clears_the_email_bounce_flag_but_not_the_phone_flag() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    for (channel, address) in [
        (pb::ContactChannel::Email, "taro@example.jp"),
        (pb::ContactChannel::Sms, "+819012345678"),
    ] {
        fx.client
            .record_contact_bounce(bounce(id, channel, address))
            .await
            .expect("bounce");
    }
    let flags = |r: pb::GetCustomerResponse| -> Vec<i32> {
        r.customer
            .expect("customer")
            .bounces
            .iter()
            .map(|b| b.channel)
            .collect()
    };
    assert_eq!(
        flags(fx.get(id).await),
        [
            pb::ContactChannel::Email as i32,
            pb::ContactChannel::Sms as i32
        ]
    );
    fx.client
        .update_customer_contact(update(
            id,
            pb::ContactData {
                email: "taro.new@example.jp".into(),
                ..taro()
            },
        ))
        .await
        .expect("update");
    assert_eq!(flags(fx.get(id).await), [pb::ContactChannel::Sms as i32]);
}

// ----------------------------------------------------------------- bounces --

fn bounce(id: Uuid, channel: pb::ContactChannel, address: &str) -> pb::RecordContactBounceRequest {
    pb::RecordContactBounceRequest {
        command: command(),
        customer_id: id.to_string(),
        channel: channel as i32,
        bounced: Some(pb::record_contact_bounce_request::Bounced::Address(
            address.into(),
        )),
        kind: pb::BounceKind::Hard as i32,
        reason: "550 no such user".into(),
    }
}

#[tokio::test]
async fn record_contact_bounce_flags_the_channel_and_counts_repeats() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    fx.client
        .record_contact_bounce(pb::RecordContactBounceRequest {
            kind: pb::BounceKind::Soft as i32,
            ..bounce(id, pb::ContactChannel::Email, "Taro@Example.JP")
        })
        .await
        .expect("soft");
    let reply = fx
        .client
        .record_contact_bounce(bounce(id, pb::ContactChannel::Email, "taro@example.jp"))
        .await
        .expect("hard")
        .into_inner();
    assert_eq!(
        reply.result.expect("result").event_types,
        ["customer.contact_bounced"]
    );
    let customer = fx.get(id).await.customer.expect("customer");
    let flag = &customer.bounces[0];
    assert_eq!(flag.kind, pb::BounceKind::Hard as i32);
    assert_eq!(flag.bounce_count, 2);
    assert_eq!(
        flag.bounced,
        Some(pb::contact_bounce_flag::Bounced::Address(
            "taro@example.jp".into()
        ))
    );

    // A postal bounce is given as an address and compared normalised.
    fx.client
        .record_contact_bounce(pb::RecordContactBounceRequest {
            bounced: Some(pb::record_contact_bounce_request::Bounced::PostalAddress(
                pb::PostalAddress {
                    lines: vec!["１－２－３　丸の内".into()],
                    ..taro().postal_address.expect("address")
                },
            )),
            ..bounce(id, pb::ContactChannel::Postal, "")
        })
        .await
        .expect("postal");
}

#[tokio::test]
async fn record_contact_bounce_retried_replays() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    assert_replays!(
        fx,
        record_contact_bounce,
        bounce(id, pb::ContactChannel::Phone, "090-1234-5678")
    );
}

#[tokio::test]
async fn record_contact_bounce_names_each_invalid_field() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let ok = bounce(id, pb::ContactChannel::Email, "taro@example.jp");
    let cases = vec![
        (
            pb::RecordContactBounceRequest {
                customer_id: "x".into(),
                ..ok.clone()
            },
            "customer_id",
        ),
        (
            pb::RecordContactBounceRequest {
                channel: pb::ContactChannel::Unspecified as i32,
                ..ok.clone()
            },
            "channel",
        ),
        (
            pb::RecordContactBounceRequest {
                channel: pb::ContactChannel::Push as i32,
                ..ok.clone()
            },
            "channel",
        ),
        (
            pb::RecordContactBounceRequest {
                channel: 77,
                ..ok.clone()
            },
            "channel",
        ),
        (
            pb::RecordContactBounceRequest {
                kind: pb::BounceKind::Unspecified as i32,
                ..ok.clone()
            },
            "kind",
        ),
        (
            pb::RecordContactBounceRequest {
                bounced: None,
                ..ok.clone()
            },
            "address",
        ),
        (
            bounce(id, pb::ContactChannel::Email, "taro.example.jp"),
            "address",
        ),
        (
            pb::RecordContactBounceRequest {
                channel: pb::ContactChannel::Postal as i32,
                ..ok.clone()
            },
            "postal_address",
        ),
    ];
    let head = fx.head().await;
    for (request, field) in cases {
        let status = fx
            .client
            .record_contact_bounce(request)
            .await
            .expect_err(field);
        assert_invalid(&status, field);
    }
    assert_eq!(fx.head().await, head);
}

#[tokio::test]
async fn record_contact_bounce_refuses_stale_values_missing_contact_and_unknown_customers() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let status = fx
        .client
        .record_contact_bounce(bounce(id, pb::ContactChannel::Email, "old@example.jp"))
        .await
        .expect_err("stale");
    assert_rejected(&status, "BOUNCE_FOR_STALE_CONTACT");

    fx.client
        .update_customer_contact(update(
            id,
            pb::ContactData {
                phone: String::new(),
                ..taro()
            },
        ))
        .await
        .expect("drop phone");
    let status = fx
        .client
        .record_contact_bounce(bounce(id, pb::ContactChannel::Sms, "+819012345678"))
        .await
        .expect_err("no phone");
    assert_rejected(&status, "NO_CONTACT_ON_CHANNEL");

    let unknown = Uuid::now_v7();
    let status = fx
        .client
        .record_contact_bounce(bounce(unknown, pb::ContactChannel::Email, "a@b.jp"))
        .await
        .expect_err("unknown");
    assert_not_found(&status, unknown);
}

// -------------------------------------------------------------- attributes --

fn set_attr(
    id: Uuid,
    key: &str,
    kind: pb::attribute_value::Kind,
) -> pb::SetCustomerAttributeRequest {
    pb::SetCustomerAttributeRequest {
        command: command(),
        customer_id: id.to_string(),
        key: key.into(),
        value: Some(pb::AttributeValue { kind: Some(kind) }),
    }
}

#[tokio::test]
async fn set_customer_attribute_records_typed_values_once() {
    use pb::attribute_value::Kind;
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let values = [
        ("tier", Kind::StringValue("gold".into())),
        ("visits", Kind::IntValue(12)),
        ("score", Kind::NumberValue(0.75)),
        ("vip", Kind::BoolValue(true)),
        (
            "birthday",
            Kind::DateValue(pb::AttributeDate {
                year: 1990,
                month: 2,
                day: 28,
            }),
        ),
    ];
    for (key, kind) in values.clone() {
        fx.client
            .set_customer_attribute(set_attr(id, key, kind))
            .await
            .expect("set");
    }
    let customer = fx.get(id).await.customer.expect("customer");
    for (key, kind) in values {
        assert_eq!(
            customer.attributes.get(key),
            Some(&pb::AttributeValue { kind: Some(kind) }),
            "{key}"
        );
    }
    // Setting the current value again appends nothing.
    let head = fx.head().await;
    let reply = fx
        .client
        .set_customer_attribute(set_attr(id, "visits", Kind::IntValue(12)))
        .await
        .expect("same")
        .into_inner();
    assert!(reply.result.expect("result").streams.is_empty());
    assert_eq!(fx.head().await, head);
}

#[tokio::test]
async fn set_customer_attribute_retried_replays() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    assert_replays!(
        fx,
        set_customer_attribute,
        set_attr(
            id,
            "tier",
            pb::attribute_value::Kind::StringValue("gold".into())
        )
    );
}

#[tokio::test]
async fn set_customer_attribute_names_each_invalid_field() {
    use pb::attribute_value::Kind;
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let cases = vec![
        (
            set_attr(Uuid::nil(), "k", Kind::BoolValue(true)),
            "customer_id",
        ),
        (set_attr(id, "Tier", Kind::BoolValue(true)), "key"),
        (set_attr(id, "", Kind::BoolValue(true)), "key"),
        (
            pb::SetCustomerAttributeRequest {
                value: None,
                ..set_attr(id, "k", Kind::BoolValue(true))
            },
            "value",
        ),
        (
            pb::SetCustomerAttributeRequest {
                value: Some(pb::AttributeValue { kind: None }),
                ..set_attr(id, "k", Kind::BoolValue(true))
            },
            "value",
        ),
        (
            set_attr(id, "k", Kind::StringValue("x".repeat(1001))),
            "value.string_value",
        ),
        (
            set_attr(id, "k", Kind::NumberValue(f64::NAN)),
            "value.number_value",
        ),
        (
            set_attr(id, "k", Kind::NumberValue(f64::NEG_INFINITY)),
            "value.number_value",
        ),
        (
            set_attr(
                id,
                "k",
                Kind::DateValue(pb::AttributeDate {
                    year: 2023,
                    month: 2,
                    day: 29,
                }),
            ),
            "value.date_value",
        ),
    ];
    let head = fx.head().await;
    for (request, field) in cases {
        let status = fx
            .client
            .set_customer_attribute(request)
            .await
            .expect_err(field);
        assert_invalid(&status, field);
    }
    assert_eq!(fx.head().await, head);
}

#[tokio::test]
async fn set_customer_attribute_refuses_a_201st_key_and_unknown_customers() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    for i in 0..200 {
        fx.client
            .set_customer_attribute(set_attr(
                id,
                &format!("a{i}"),
                pb::attribute_value::Kind::IntValue(i),
            ))
            .await
            .expect("set");
    }
    let status = fx
        .client
        .set_customer_attribute(set_attr(
            id,
            "one_more",
            pb::attribute_value::Kind::IntValue(1),
        ))
        .await
        .expect_err("201st");
    assert_rejected(&status, "TOO_MANY_ATTRIBUTES");
    // Changing an existing one is still fine.
    fx.client
        .set_customer_attribute(set_attr(id, "a0", pb::attribute_value::Kind::IntValue(-1)))
        .await
        .expect("change");

    let unknown = Uuid::now_v7();
    let status = fx
        .client
        .set_customer_attribute(set_attr(
            unknown,
            "k",
            pb::attribute_value::Kind::IntValue(1),
        ))
        .await
        .expect_err("unknown");
    assert_not_found(&status, unknown);
}

fn remove_attr(id: Uuid, key: &str) -> pb::RemoveCustomerAttributeRequest {
    pb::RemoveCustomerAttributeRequest {
        command: command(),
        customer_id: id.to_string(),
        key: key.into(),
    }
}

#[tokio::test]
async fn remove_customer_attribute_removes_replays_and_refuses() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    fx.client
        .set_customer_attribute(set_attr(id, "tier", pb::attribute_value::Kind::IntValue(1)))
        .await
        .expect("set");
    assert_replays!(fx, remove_customer_attribute, remove_attr(id, "tier"));
    assert!(
        fx.get(id)
            .await
            .customer
            .expect("customer")
            .attributes
            .is_empty()
    );

    let status = fx
        .client
        .remove_customer_attribute(remove_attr(id, "tier"))
        .await
        .expect_err("not set");
    assert_rejected(&status, "ATTRIBUTE_NOT_SET");
    let status = fx
        .client
        .remove_customer_attribute(remove_attr(id, "9lives"))
        .await
        .expect_err("bad key");
    assert_invalid(&status, "key");
    let status = fx
        .client
        .remove_customer_attribute(pb::RemoveCustomerAttributeRequest {
            customer_id: String::new(),
            ..remove_attr(id, "tier")
        })
        .await
        .expect_err("no id");
    assert_invalid(&status, "customer_id");
    let unknown = Uuid::now_v7();
    let status = fx
        .client
        .remove_customer_attribute(remove_attr(unknown, "tier"))
        .await
        .expect_err("unknown");
    assert_not_found(&status, unknown);
}

// ------------------------------------------------------------------- notes --

fn note(id: Uuid, text: &str) -> pb::AddCustomerNoteRequest {
    pb::AddCustomerNoteRequest {
        command: command(),
        customer_id: id.to_string(),
        text: text.into(),
        author: String::new(),
    }
}

#[tokio::test]
async fn add_customer_note_returns_the_note_id_and_defaults_the_author_to_the_actor() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let reply = fx
        .client
        .add_customer_note(note(id, " ﾀﾛｳ様から電話 "))
        .await
        .expect("note")
        .into_inner();
    let notes = fx.get(id).await.customer.expect("customer").notes;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].note_id, reply.note_id);
    assert_eq!(notes[0].text, "タロウ様から電話");
    assert_eq!(notes[0].author, "user:alice");
    assert_eq!(
        notes[0].added_at,
        Some(prost_types::Timestamp {
            seconds: START_NANOS / 1_000_000_000,
            nanos: 0
        })
    );
}

#[tokio::test]
async fn add_customer_note_retried_replays_with_the_same_note_id() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let (first, again) = assert_replays!(fx, add_customer_note, note(id, "hello"));
    assert_eq!(first.note_id, again.note_id);
    assert_eq!(fx.get(id).await.customer.expect("customer").notes.len(), 1);
}

#[tokio::test]
async fn add_customer_note_names_each_invalid_field_and_unknown_customers() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    let cases = vec![
        (note(id, ""), "text"),
        (note(id, &"x".repeat(5001)), "text"),
        (
            pb::AddCustomerNoteRequest {
                author: "a".repeat(257),
                ..note(id, "hi")
            },
            "author",
        ),
        (
            pb::AddCustomerNoteRequest {
                customer_id: id.to_string().to_uppercase(),
                ..note(id, "hi")
            },
            "customer_id",
        ),
    ];
    for (request, field) in cases {
        let status = fx.client.add_customer_note(request).await.expect_err(field);
        assert_invalid(&status, field);
    }
    let unknown = Uuid::now_v7();
    let status = fx
        .client
        .add_customer_note(note(unknown, "hi"))
        .await
        .expect_err("unknown");
    assert_not_found(&status, unknown);
}

// ---------------------------------------------------------------- consents --

fn grant(
    id: Uuid,
    channel: pb::ContactChannel,
    purpose: pb::ConsentPurpose,
) -> pb::GrantConsentRequest {
    pb::GrantConsentRequest {
        command: command(),
        customer_id: id.to_string(),
        channel: channel as i32,
        purpose: purpose as i32,
        source: "web".into(),
        evidence: "newsletter checkbox".into(),
    }
}

fn revoke(
    id: Uuid,
    channel: pb::ContactChannel,
    purpose: pb::ConsentPurpose,
) -> pb::RevokeConsentRequest {
    pb::RevokeConsentRequest {
        command: command(),
        customer_id: id.to_string(),
        channel: channel as i32,
        purpose: purpose as i32,
        source: "web".into(),
        evidence: "unsubscribe link".into(),
    }
}

#[tokio::test]
async fn grant_consent_records_once_and_replays() {
    use pb::ConsentPurpose::Marketing;
    use pb::ContactChannel::Email;
    let mut fx = fixture().await;
    let id = fx.customer().await;
    assert_replays!(fx, grant_consent, grant(id, Email, Marketing));
    // Granting a held consent under a new command id changes nothing.
    let head = fx.head().await;
    let reply = fx
        .client
        .grant_consent(grant(id, Email, Marketing))
        .await
        .expect("again")
        .into_inner();
    assert!(reply.result.expect("result").streams.is_empty());
    assert_eq!(fx.head().await, head);
    let customer = fx.get(id).await.customer.expect("customer");
    assert_eq!(
        customer.consents,
        [pb::ConsentGrant {
            channel: Email as i32,
            purpose: Marketing as i32
        }]
    );
}

#[tokio::test]
async fn revoke_consent_records_a_held_consent_once_and_replays() {
    use pb::ConsentPurpose::Marketing;
    use pb::ContactChannel::Email;
    let mut fx = fixture().await;
    let id = fx.customer().await;
    fx.client
        .grant_consent(grant(id, Email, Marketing))
        .await
        .expect("grant");
    assert_replays!(fx, revoke_consent, revoke(id, Email, Marketing));
    let head = fx.head().await;
    let reply = fx
        .client
        .revoke_consent(revoke(id, Email, Marketing))
        .await
        .expect("not held")
        .into_inner();
    assert!(reply.result.expect("result").streams.is_empty());
    assert_eq!(fx.head().await, head);
    assert!(
        fx.get(id)
            .await
            .customer
            .expect("customer")
            .consents
            .is_empty()
    );
}

#[tokio::test]
async fn consent_rpcs_name_each_invalid_field_and_unknown_customers() {
    use pb::ConsentPurpose::{Marketing, Unspecified as NoPurpose};
    use pb::ContactChannel::{Email, Unspecified as NoChannel};
    let mut fx = fixture().await;
    let id = fx.customer().await;
    for (request, field) in [
        (grant(id, NoChannel, Marketing), "channel"),
        (grant(id, Email, NoPurpose), "purpose"),
        (
            pb::GrantConsentRequest {
                purpose: 9,
                ..grant(id, Email, Marketing)
            },
            "purpose",
        ),
        (
            pb::GrantConsentRequest {
                evidence: "e".repeat(1001),
                ..grant(id, Email, Marketing)
            },
            "evidence",
        ),
        (
            pb::GrantConsentRequest {
                customer_id: String::new(),
                ..grant(id, Email, Marketing)
            },
            "customer_id",
        ),
    ] {
        let status = fx.client.grant_consent(request).await.expect_err(field);
        assert_invalid(&status, field);
    }
    for (request, field) in [
        (revoke(id, NoChannel, Marketing), "channel"),
        (revoke(id, Email, NoPurpose), "purpose"),
        (
            pb::RevokeConsentRequest {
                source: "s".repeat(201),
                ..revoke(id, Email, Marketing)
            },
            "source",
        ),
        (
            pb::RevokeConsentRequest {
                customer_id: "zz".into(),
                ..revoke(id, Email, Marketing)
            },
            "customer_id",
        ),
    ] {
        let status = fx.client.revoke_consent(request).await.expect_err(field);
        assert_invalid(&status, field);
    }
    let unknown = Uuid::now_v7();
    let status = fx
        .client
        .grant_consent(grant(unknown, Email, Marketing))
        .await
        .expect_err("unknown");
    assert_not_found(&status, unknown);
    let status = fx
        .client
        .revoke_consent(revoke(unknown, Email, Marketing))
        .await
        .expect_err("unknown");
    assert_not_found(&status, unknown);
}

// ------------------------------------------------------------------ merges --

#[tokio::test]
async fn merge_then_undo_spans_both_streams_contiguously() {
    let mut fx = fixture().await;
    let source = fx.customer().await;
    let target = fx.customer().await;

    let merged = fx.merge(source, target).await;
    let result = merged.result.expect("result");
    assert_eq!(
        result.event_types,
        ["customer.merged", "customer.merge_absorbed"]
    );
    let [s, t] = &result.streams[..] else {
        panic!("{result:?}")
    };
    assert_eq!(
        (s.stream.as_str(), t.stream.as_str()),
        (stream_name(source).as_str(), stream_name(target).as_str())
    );
    assert_eq!(t.first_position, s.last_position + 1, "contiguous");
    // Each event is tagged with its own stream's customer.
    for (id, event) in [
        (source, &fx.events_of(source).await[1]),
        (target, &fx.events_of(target).await[1]),
    ] {
        assert_eq!(event.customer_id, Some(id));
    }

    let src = fx.get(source).await.customer.expect("source");
    let link = src.merged_into.expect("merged");
    assert_eq!(
        (link.customer_id.as_str(), link.merge_id.as_str()),
        (target.to_string().as_str(), merged.merge_id.as_str())
    );
    let tgt = fx.get(target).await.customer.expect("target");
    assert_eq!(tgt.absorbed_merges.len(), 1);
    assert_eq!(tgt.absorbed_merges[0].customer_id, source.to_string());

    let undone = fx
        .client
        .undo_customer_merge(pb::UndoCustomerMergeRequest {
            command: command(),
            source_customer_id: source.to_string(),
            merge_id: merged.merge_id.clone(),
        })
        .await
        .expect("undo")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(
        undone.event_types,
        ["customer.merge_undone", "customer.merge_undone"]
    );
    let [s2, t2] = &undone.streams[..] else {
        panic!("{undone:?}")
    };
    assert_eq!(s2.first_position, t.last_position + 1);
    assert_eq!(t2.first_position, s2.last_position + 1, "contiguous");
    assert_eq!(
        (s2.stream.as_str(), t2.stream.as_str()),
        (stream_name(source).as_str(), stream_name(target).as_str())
    );
    assert!(
        fx.get(source)
            .await
            .customer
            .expect("source")
            .merged_into
            .is_none()
    );
    assert!(
        fx.get(target)
            .await
            .customer
            .expect("target")
            .absorbed_merges
            .is_empty()
    );
    // The source accepts commands again.
    fx.client
        .add_customer_note(note(source, "back"))
        .await
        .expect("note after undo");
}

#[tokio::test]
async fn merge_customers_retried_replays_with_the_same_merge_id() {
    let mut fx = fixture().await;
    let source = fx.customer().await;
    let target = fx.customer().await;
    let (first, again) = assert_replays!(
        fx,
        merge_customers,
        pb::MergeCustomersRequest {
            command: command(),
            source_customer_id: source.to_string(),
            target_customer_id: target.to_string(),
        }
    );
    assert_eq!(first.merge_id, again.merge_id);
    assert_eq!(first.result.expect("result").streams.len(), 2);
}

#[tokio::test]
async fn a_merge_into_an_unknown_target_appends_nothing_anywhere() {
    let mut fx = fixture().await;
    let source = fx.customer().await;
    let head = fx.head().await;
    let unknown = Uuid::now_v7();
    let status = fx
        .client
        .merge_customers(pb::MergeCustomersRequest {
            command: command(),
            source_customer_id: source.to_string(),
            target_customer_id: unknown.to_string(),
        })
        .await
        .expect_err("unknown target");
    assert_not_found(&status, unknown);
    assert_eq!(fx.head().await, head);
    assert_eq!(fx.events_of(source).await.len(), 1);
    assert!(
        fx.get(source)
            .await
            .customer
            .expect("source")
            .merged_into
            .is_none()
    );

    let status = fx
        .client
        .merge_customers(pb::MergeCustomersRequest {
            command: command(),
            source_customer_id: unknown.to_string(),
            target_customer_id: source.to_string(),
        })
        .await
        .expect_err("unknown source");
    assert_not_found(&status, unknown);
}

#[tokio::test]
async fn merge_customers_names_each_invalid_field() {
    let mut fx = fixture().await;
    let a = fx.customer().await;
    let b = fx.customer().await;
    let ok = pb::MergeCustomersRequest {
        command: command(),
        source_customer_id: a.to_string(),
        target_customer_id: b.to_string(),
    };
    for (request, field) in [
        (
            pb::MergeCustomersRequest {
                source_customer_id: String::new(),
                ..ok.clone()
            },
            "source_customer_id",
        ),
        (
            pb::MergeCustomersRequest {
                target_customer_id: "b".into(),
                ..ok.clone()
            },
            "target_customer_id",
        ),
        (
            pb::MergeCustomersRequest {
                target_customer_id: a.to_string(),
                ..ok.clone()
            },
            "target_customer_id",
        ),
        (
            pb::MergeCustomersRequest {
                command: None,
                ..ok.clone()
            },
            "command",
        ),
    ] {
        let status = fx.client.merge_customers(request).await.expect_err(field);
        assert_invalid(&status, field);
    }
}

#[tokio::test]
async fn merged_customers_refuse_merges_and_commands_but_a_target_absorbs_more() {
    let mut fx = fixture().await;
    let a = fx.customer().await;
    let b = fx.customer().await;
    let c = fx.customer().await;
    fx.merge(a, b).await;

    // The merged-away customer can be neither merged again nor a target.
    for (source, target) in [(a, c), (c, a)] {
        let status = fx
            .client
            .merge_customers(pb::MergeCustomersRequest {
                command: command(),
                source_customer_id: source.to_string(),
                target_customer_id: target.to_string(),
            })
            .await
            .expect_err("merged");
        assert_rejected(&status, "CUSTOMER_MERGED");
    }
    // Nor does it take other commands; the message names where it went.
    let status = fx
        .client
        .add_customer_note(note(a, "hi"))
        .await
        .expect_err("merged");
    assert_rejected(&status, "CUSTOMER_MERGED");
    assert!(status.message().contains(&b.to_string()), "{status:?}");
    let head = fx.head().await;
    let refusals = [
        fx.client
            .update_customer_contact(update(a, taro()))
            .await
            .map(drop),
        fx.client
            .record_contact_bounce(bounce(a, pb::ContactChannel::Email, "taro@example.jp"))
            .await
            .map(drop),
        fx.client
            .set_customer_attribute(set_attr(a, "k", pb::attribute_value::Kind::IntValue(1)))
            .await
            .map(drop),
        fx.client
            .remove_customer_attribute(remove_attr(a, "k"))
            .await
            .map(drop),
        fx.client
            .grant_consent(grant(
                a,
                pb::ContactChannel::Email,
                pb::ConsentPurpose::Marketing,
            ))
            .await
            .map(drop),
        fx.client
            .revoke_consent(revoke(
                a,
                pb::ContactChannel::Email,
                pb::ConsentPurpose::Marketing,
            ))
            .await
            .map(drop),
    ];
    for refused in refusals {
        assert_rejected(&refused.expect_err("merged"), "CUSTOMER_MERGED");
    }
    assert_eq!(fx.head().await, head);

    // The target can absorb another customer.
    fx.merge(c, b).await;
    let target = fx.get(b).await.customer.expect("target");
    assert_eq!(target.absorbed_merges.len(), 2);
}

fn undo(source: Uuid, merge_id: &str) -> pb::UndoCustomerMergeRequest {
    pb::UndoCustomerMergeRequest {
        command: command(),
        source_customer_id: source.to_string(),
        merge_id: merge_id.into(),
    }
}

#[tokio::test]
async fn undo_customer_merge_retried_replays() {
    let mut fx = fixture().await;
    let a = fx.customer().await;
    let b = fx.customer().await;
    fx.merge(a, b).await;
    // Without a merge id: the source's current merge.
    let (first, _) = assert_replays!(fx, undo_customer_merge, undo(a, ""));
    assert_eq!(first.result.expect("result").streams.len(), 2);
}

#[tokio::test]
async fn undo_customer_merge_only_undoes_the_current_merge() {
    let mut fx = fixture().await;
    let a = fx.customer().await;
    let b = fx.customer().await;

    // Not merged at all.
    let status = fx
        .client
        .undo_customer_merge(undo(a, ""))
        .await
        .expect_err("not merged");
    assert_rejected(&status, "MERGE_NOT_FOUND");

    let first = fx.merge(a, b).await.merge_id;
    fx.client
        .undo_customer_merge(undo(a, &first))
        .await
        .expect("undo");
    let second = fx.merge(a, b).await.merge_id;
    assert_ne!(first, second);

    // The old merge's undo does not undo the new merge.
    let head = fx.head().await;
    let status = fx
        .client
        .undo_customer_merge(undo(a, &first))
        .await
        .expect_err("stale merge");
    assert_rejected(&status, "MERGE_NOT_FOUND");
    // Nor does naming the target as the source.
    let status = fx
        .client
        .undo_customer_merge(undo(b, &second))
        .await
        .expect_err("target is not a source");
    assert_rejected(&status, "MERGE_NOT_FOUND");
    assert_eq!(fx.head().await, head);
}

#[tokio::test]
async fn undo_customer_merge_names_each_invalid_field_and_unknown_customers() {
    let mut fx = fixture().await;
    let a = fx.customer().await;
    for (request, field) in [
        (
            pb::UndoCustomerMergeRequest {
                source_customer_id: String::new(),
                ..undo(a, "")
            },
            "source_customer_id",
        ),
        (undo(a, "not-a-merge"), "merge_id"),
    ] {
        let status = fx
            .client
            .undo_customer_merge(request)
            .await
            .expect_err(field);
        assert_invalid(&status, field);
    }
    let unknown = Uuid::now_v7();
    let status = fx
        .client
        .undo_customer_merge(undo(unknown, ""))
        .await
        .expect_err("unknown");
    assert_not_found(&status, unknown);
}

#[tokio::test]
async fn merge_with_a_stale_expected_version_is_aborted_and_appends_nothing() {
    let mut fx = fixture().await;
    let a = fx.customer().await;
    let b = fx.customer().await;
    fx.client
        .add_customer_note(note(a, "moves the source to version 1"))
        .await
        .expect("note");
    let head = fx.head().await;
    let mut meta = command().expect("meta");
    meta.expected_version = Some(0);
    let status = fx
        .client
        .merge_customers(pb::MergeCustomersRequest {
            command: Some(meta),
            source_customer_id: a.to_string(),
            target_customer_id: b.to_string(),
        })
        .await
        .expect_err("stale");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(fx.head().await, head);
}

// -------------------------------------------------------------------- get --

#[tokio::test]
async fn get_customer_shows_the_folded_state_and_refuses_bad_or_unknown_ids() {
    let mut fx = fixture().await;
    let id = fx.customer().await;
    fx.client
        .set_customer_attribute(set_attr(
            id,
            "vip",
            pb::attribute_value::Kind::BoolValue(true),
        ))
        .await
        .expect("attr");
    fx.client
        .add_customer_note(pb::AddCustomerNoteRequest {
            author: "user:bob".into(),
            ..note(id, "first")
        })
        .await
        .expect("note");
    let got = fx.get(id).await;
    assert_eq!(got.version, 2);
    let customer = got.customer.expect("customer");
    assert_eq!(customer.notes[0].author, "user:bob");
    assert_eq!(customer.attributes.len(), 1);
    assert!(customer.merged_into.is_none() && customer.absorbed_merges.is_empty());

    let status = fx
        .client
        .get_customer(pb::GetCustomerRequest {
            customer_id: "x".into(),
        })
        .await
        .expect_err("bad id");
    assert_invalid(&status, "customer_id");
    let unknown = Uuid::now_v7();
    let status = fx
        .client
        .get_customer(pb::GetCustomerRequest {
            customer_id: unknown.to_string(),
        })
        .await
        .expect_err("unknown");
    assert_not_found(&status, unknown);
}

#[test]
fn every_customer_event_type_is_in_the_catalog() {
    let types: Vec<&str> = CustomerEvent::catalog()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    for t in [
        "customer.registered",
        "customer.contact_updated",
        "customer.contact_bounced",
        "customer.attribute_set",
        "customer.attribute_removed",
        "customer.note_added",
        "customer.consent_granted",
        "customer.consent_revoked",
        "customer.merged",
        "customer.merge_absorbed",
        "customer.merge_undone",
    ] {
        assert!(types.contains(&t), "{t}");
    }
}
