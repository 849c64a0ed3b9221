//! Declarations that would make a lying document stop the build, with a message naming the fault.

use herald::{App, Docs, ErrorKind, Webhook, Webhooks};

use crate::Subscription;

fn build_error(app: App) -> herald::Error {
    match app.build() {
        Ok(_) => panic!("the app should not build"),
        Err(error) => error,
    }
}

#[test]
fn a_webhook_declared_twice_is_refused() {
    let error =
        build_error(
            App::new("t", "1")
                .webhook(Webhook::<Subscription>::post("new-subscription"))
                .webhooks(Webhooks::new().webhook(
                    Webhook::<Subscription>::post("new-subscription").operation_id("other"),
                )),
        );
    assert_eq!(error.kind(), ErrorKind::DuplicateWebhook);
    assert!(
        error.to_string().contains("POST new-subscription"),
        "{error}"
    );
}

#[test]
fn the_same_name_with_another_method_is_fine() {
    App::new("t", "1")
        .webhook(Webhook::<Subscription>::post("subscription"))
        .webhook(
            Webhook::<Subscription>::delete("subscription").operation_id("subscription_deleted"),
        )
        .build()
        .expect("distinct methods");
}

#[test]
fn an_operation_id_shared_by_a_route_and_a_webhook_is_refused() {
    /// Creates a subscription.
    #[utoipa::path(post, path = "/subscriptions", responses((status = 201)))]
    async fn new_subscription() {}

    let error = build_error(
        App::new("t", "1")
            .routes(
                utoipa_axum::router::OpenApiRouter::new()
                    .routes(utoipa_axum::routes!(new_subscription)),
            )
            .webhook(Webhook::<Subscription>::post("new-subscription")),
    );
    assert_eq!(error.kind(), ErrorKind::DuplicateOperationId);
    let message = error.to_string();
    assert!(message.contains("`new_subscription`"), "{message}");
    assert!(message.contains("POST /subscriptions"), "{message}");
    assert!(
        message.contains("webhook POST new-subscription"),
        "{message}"
    );
}

mod other {
    /// A different type that happens to share the name.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    pub(crate) struct Subscription {
        pub(crate) plan: u32,
    }
}

#[test]
fn two_types_with_one_schema_name_are_refused() {
    let error = build_error(
        App::new("t", "1")
            .webhook(Webhook::<Subscription>::post("a"))
            .webhook(Webhook::<other::Subscription>::post("b")),
    );
    assert_eq!(error.kind(), ErrorKind::ConflictingSchema);
    assert!(error.to_string().contains("`Subscription`"), "{error}");
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Keyed {
    #[schema(value_type = Object)]
    by_pair: std::collections::HashMap<(u8, u8), u8>,
}

#[test]
fn an_example_that_cannot_be_json_is_refused() {
    let example = Keyed {
        by_pair: [((1, 2), 3)].into_iter().collect(),
    };
    let error =
        build_error(App::new("t", "1").webhook(Webhook::<Keyed>::post("keyed").example(example)));
    assert_eq!(error.kind(), ErrorKind::InvalidExample);
    assert!(error.to_string().contains("`keyed`"), "{error}");
}

#[test]
fn a_docs_path_that_is_not_a_path_is_refused() {
    let error = build_error(App::new("t", "1").docs(Docs::default().docs_url(Some("docs"))));
    assert_eq!(error.kind(), ErrorKind::InvalidDocsPath);
    assert!(error.to_string().contains("docs_url `docs`"), "{error}");
}
