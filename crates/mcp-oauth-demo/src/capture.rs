//! The client's side of the story: `mcp_oauth` records every discovery attempt in its
//! trace and emits each one as a `tracing` event (target `mcp_oauth::discovery`) as it
//! happens. This layer turns those events into [`Event::Discovery`].

use crate::events::{DiscoveryStep, Event, EventSink};
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Level};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};

const TARGET: &str = "mcp_oauth::discovery";

struct DiscoveryLayer {
    events: EventSink,
}

#[derive(Default)]
struct Fields(DiscoveryStep);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let s = &mut self.0;
        match field.name() {
            "what" => s.what = value.to_owned(),
            "url" => s.url = value.to_owned(),
            "verdict" => s.verdict = value.to_owned(),
            "detail" => s.detail = value.to_owned(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "status" {
            self.0.status = u16::try_from(value).unwrap_or(0);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields arrive here (as Display wrapped in Debug).
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }
}

impl<S: tracing::Subscriber> Layer<S> for DiscoveryLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.events.send(Event::Discovery(fields.0));
    }
}

/// A dispatcher that reports the client's discovery attempts to `events` (and nothing
/// else). Run the client's future with it (`tracing::instrument::WithSubscriber`).
pub fn discovery_dispatch(events: EventSink) -> Dispatch {
    let layer =
        DiscoveryLayer { events }.with_filter(Targets::new().with_target(TARGET, Level::DEBUG));
    Dispatch::new(tracing_subscriber::registry().with(layer))
}
