//! Log capture for tests: every line a piece of work logs, written exactly as production would write it
//! (format, filter, redaction), kept in memory for the test that started the work.
//!
//! A capture used to be a per-thread scoped dispatcher, and lines escaped it two ways:
//!
//! - tracing caches each callsite's interest. With a single registered dispatcher, the interest of a callsite
//!   first hit on another thread (another test, with no capture) is asked of that thread's default, which says
//!   `never`, and the callsite stays silent for the capture too.
//! - lines logged on another thread (a blocking-pool thread, a multi-threaded runtime's workers) never reach a
//!   dispatcher that is default only on the test's thread.
//!
//! So one routing subscriber is installed as the global default, once per binary, and owns no output itself.
//! It answers `sometimes` for every callsite, so no interest is ever cached, and routes each line to the
//! capture that owns it. Ownership travels in spans: [`capture`] enters a span naming the capture, which stays
//! entered on the test's thread for the capture's lifetime, so everything polled there (the test, and every
//! task a current-thread runtime runs) is inside it; a span created inside it belongs to the same capture,
//! wherever it is entered later (a task instrumented with `Instrument`, a span entered on a blocking thread),
//! and so does every line logged inside it. The capture span itself is never shown to the capture's
//! formatter: lines read as production writes them.
//!
//! Each capture formats through its own subscriber, built by [`super::subscriber`] as every binary's is; the
//! router forwards the owned spans (with their enters and exits) and events to it, translating span ids.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, EnteredSpan, Id, Record};
use tracing::subscriber::{DefaultGuard, Interest};
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::{LookupSpan, Registry};

use super::format::{LogFormat, subscriber};

/// The target of the span that marks a capture's work.
const CAPTURE_TARGET: &str = "opsplane_shared::telemetry::capture";
/// The name of that span, and of its field holding the capture's id.
const CAPTURE_SPAN: &str = "capture";

/// Log lines kept in memory: what [`capture`] collected, exactly as production would have written them.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Appends to a [`CapturedLogs`].
#[derive(Debug)]
pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for CapturedLogs {
    type Writer = CapturedWriter;

    fn make_writer(&'w self) -> Self::Writer {
        CapturedWriter(self.0.clone())
    }
}

/// Captures the log lines of everything this thread runs, and of the work it hands on inside its spans, in
/// memory, through the same subscriber (format, redaction) that [`super::init`] installs, until the guard is
/// dropped. For tests that check what the logs say, or do not.
///
/// The first capture installs the routing subscriber as the global default. In a binary that installed a
/// global subscriber of its own first (by calling [`super::init`]), the router is this thread's default
/// instead, and lines logged on other threads are not seen.
pub fn capture(format: LogFormat, directive: &str) -> (CaptureGuard, CapturedLogs) {
    let logs = CapturedLogs::default();
    let filter = EnvFilter::try_new(directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let scoped = install();
    let id = ROUTER.next.fetch_add(1, Ordering::Relaxed) + 1;
    let formatter = Dispatch::new(subscriber(format, filter, logs.clone()));
    write(&ROUTER.formatters).insert(id, formatter);
    let span = tracing::span!(
        target: CAPTURE_TARGET,
        tracing::Level::ERROR,
        CAPTURE_SPAN,
        capture = id
    );
    let guard = CaptureGuard {
        entered: Some(span.entered()),
        id,
        _scoped: scoped,
    };
    (guard, logs)
}

/// Keeps a capture collecting; dropping it ends the capture (lines logged later are not kept).
#[must_use = "the capture ends when the guard is dropped"]
pub struct CaptureGuard {
    entered: Option<EnteredSpan>,
    id: u64,
    // Dropped last: the router stays this thread's default until the capture span is closed.
    _scoped: Option<DefaultGuard>,
}

impl std::fmt::Debug for CaptureGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureGuard")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        drop(self.entered.take());
        write(&ROUTER.formatters).remove(&self.id);
    }
}

/// Makes the router the global default once per binary; the scoped default to hold instead when another
/// global subscriber was there first.
fn install() -> Option<DefaultGuard> {
    static GLOBAL: OnceLock<bool> = OnceLock::new();
    let global =
        *GLOBAL.get_or_init(|| tracing::dispatcher::set_global_default(ROUTED.clone()).is_ok());
    (!global).then(|| tracing::dispatcher::set_default(&ROUTED))
}

/// The routing subscriber: a registry (span ids, parents, what each thread has entered) and the router.
static ROUTED: LazyLock<Dispatch> =
    LazyLock::new(|| Dispatch::new(Registry::default().with(Router)));

/// The router's state, shared by every thread of the binary.
#[derive(Default)]
struct Captures {
    /// Each live capture's formatter, by capture id.
    formatters: RwLock<HashMap<u64, Dispatch>>,
    next: AtomicU64,
}

static ROUTER: LazyLock<Captures> = LazyLock::new(Captures::default);

impl Captures {
    fn formatter(&self, owner: u64) -> Option<Dispatch> {
        read(&self.formatters).get(&owner).cloned()
    }

    fn any(&self) -> bool {
        !read(&self.formatters).is_empty()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// Kept in the extensions of every span created inside a capture.
struct Owned {
    /// The capture it belongs to.
    owner: u64,
    /// Its id in the capture's formatter; `None` when the capture's filter leaves it out (or it is the capture
    /// span itself).
    inner: Option<Id>,
}

fn is_capture_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target() == CAPTURE_TARGET && metadata.name() == CAPTURE_SPAN
}

/// Reads the capture id off the capture span's fields.
#[derive(Default)]
struct CaptureId(Option<u64>);

impl Visit for CaptureId {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == CAPTURE_SPAN {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

/// The capture owning span `id`.
fn owner_of<S>(id: &Id, ctx: &Context<'_, S>) -> Option<u64>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ctx.span(id)?.extensions().get::<Owned>().map(|o| o.owner)
}

/// The capture owning whatever runs on this thread now.
fn context_owner<S>(ctx: &Context<'_, S>) -> Option<u64>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    owner_of(&ctx.current_span().id()?.clone(), ctx)
}

/// The owner's formatter and the formatter's id of span `id`, when it has one.
fn inner<S>(id: &Id, ctx: &Context<'_, S>) -> Option<(Dispatch, Id)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = ctx.span(id)?;
    let ext = span.extensions();
    let owned = ext.get::<Owned>()?;
    Some((ROUTER.formatter(owned.owner)?, owned.inner.clone()?))
}

/// Routes each span and line to the capture that owns it.
struct Router;

impl<S> Layer<S> for Router
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        // Whether a callsite is wanted depends on who logs it, so no answer may be cached.
        Interest::sometimes()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        if is_capture_span(metadata) {
            return true;
        }
        match context_owner(&ctx) {
            // A span is kept even when the capture's filter leaves it out: it carries the ownership of the
            // lines inside it.
            Some(_) if metadata.is_span() => true,
            Some(owner) => ROUTER.formatter(owner).is_some_and(|f| f.enabled(metadata)),
            // Outside any capture only an explicit parent can make it owned: `on_new_span` and `on_event`
            // decide.
            None => ROUTER.any(),
        }
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let metadata = attrs.metadata();
        let owned = if is_capture_span(metadata) {
            let mut visitor = CaptureId::default();
            attrs.record(&mut visitor);
            visitor.0.map(|owner| Owned { owner, inner: None })
        } else {
            let parent = attrs.parent().filter(|p| owner_of(p, &ctx).is_some());
            let owner = match parent {
                Some(p) => owner_of(p, &ctx),
                None => context_owner(&ctx),
            };
            owner.map(|owner| {
                let inner = ROUTER
                    .formatter(owner)
                    .filter(|f| f.enabled(metadata))
                    .map(|f| match parent {
                        // The formatter keeps its own stack of entered spans, in step with the registry's.
                        None => f.new_span(attrs),
                        Some(p) => {
                            let ancestor = ctx.span(p).and_then(|span| {
                                span.scope().find_map(|s| {
                                    s.extensions().get::<Owned>().and_then(|o| o.inner.clone())
                                })
                            });
                            match ancestor {
                                Some(a) => {
                                    f.new_span(&Attributes::child_of(a, metadata, attrs.values()))
                                }
                                None => f.new_span(&Attributes::new_root(metadata, attrs.values())),
                            }
                        }
                    });
                Owned { owner, inner }
            })
        };
        if let (Some(owned), Some(span)) = (owned, ctx.span(id)) {
            span.extensions_mut().insert(owned);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some((formatter, inner)) = inner(id, &ctx) {
            formatter.record(&inner, values);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        if let (Some((formatter, inner)), Some((_, follows))) =
            (inner(id, &ctx), inner(follows, &ctx))
        {
            formatter.record_follows_from(&inner, &follows);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(formatter) = ctx
            .event_span(event)
            .and_then(|span| span.extensions().get::<Owned>().map(|o| o.owner))
            .and_then(|owner| ROUTER.formatter(owner))
        else {
            return;
        };
        // An event with an explicit parent (neither our code nor our dependencies log one) reaches the
        // formatter with the router's id of that parent, not the formatter's: the line and its own fields are
        // written whole, only the span context shown with it may be missing or another span's.
        if formatter.enabled(event.metadata()) {
            formatter.event(event);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some((formatter, inner)) = inner(id, &ctx) {
            formatter.enter(&inner);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some((formatter, inner)) = inner(id, &ctx) {
            formatter.exit(&inner);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some((formatter, inner)) = inner(&id, &ctx) {
            // The formatter's registry closes a span's parent through the default dispatcher: make that the
            // formatter while it does.
            tracing::dispatcher::with_default(&formatter, || formatter.try_close(inner));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_redacted_in_both_formats() {
        for format in [LogFormat::Json, LogFormat::Text] {
            let (guard, logs) = capture(format, "info");
            let url = "postgres://probe:line-secret-1@db:5432/app";
            tracing::info!(target_url = url, "connecting with password=line-secret-2");
            tracing::warn!(?url, "debug-formatted");
            drop(guard);
            let text = logs.text();
            assert!(
                text.contains("connecting with password=[REDACTED]"),
                "{text}"
            );
            assert!(text.contains("probe:[REDACTED]@db"), "{text}");
            assert!(!text.contains("line-secret"), "{text}");
            assert_eq!(text.lines().count(), 2, "{text}");
            assert!(!text.contains('\u{1b}'), "no colour codes: {text}");
        }
    }
}
